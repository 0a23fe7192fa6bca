"""The replay player on real bags with a hand-driven clock: every message once, in order, with its
recorded bytes, at the recorded pace times the rate; pause, rate, seeks (time, step, episode),
play_next/burst, loop, start offset, topic filter, latched topics after every seek; and the
Timeline a viewer plots from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rollout import topics as T
from rollout.bag import Bag
from rollout.codec import deserialize
from rollout.errors import BagError, RolloutError
from rollout.export.synthetic import CORE_TOPICS, T0, Recorded, write_synthetic_rollout
from rollout.replay import Item, Player, timeline, timeline_arrays
from recordings import record_humanoid

DT_NS = 15_000_000  # the synthetic rollout's step in log time


class FakeClock:
    """A monotonic ns clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Recorded]:
    path = tmp_path_factory.mktemp("bags") / "synthetic"
    return path, write_synthetic_rollout(path, steps=20, num_envs=4, chunk_size=4000, topics=CORE_TOPICS)


@pytest.fixture(scope="module")
def humanoid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MuJoCo humanoid recording (4 envs, random actions: episodes end within ~20 steps)."""
    return record_humanoid(tmp_path_factory.mktemp("bags") / "humanoid", num_envs=4, steps=60, seed=0, tf_envs=(0,))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def step_of(bag: Bag, item: Item) -> int:
    """The `step` field of a handed-out message, decoded with the bag's own schema."""
    return int(deserialize(item.data, bag.message_class(item.topic)).step)


def regular(items: list[Item]) -> list[tuple[str, bytes]]:
    return [(i.topic, bytes(i.data)) for i in items if not i.latched]


def play_all(player: Player, limit: int = 1000) -> list[Item]:
    out: list[Item] = []
    for _ in range(limit):
        out += player.due()
        if player.finished:
            return out
    raise AssertionError("the player did not finish")


def test_every_message_once_in_log_time_order_with_its_recorded_bytes(humanoid: Path, clock: FakeClock) -> None:
    with Bag(humanoid) as bag:
        expected = [(m.topic, bytes(m.data)) for m in bag.messages()]
        player = Player(bag, rate=0, clock=clock)
        got = play_all(player)
        assert [(i.topic, bytes(i.data)) for i in got] == expected
        # the latched topics came first (handed out at start), and were not played a second time
        assert [i.topic for i in got[:2]] == [T.ROBOT, T.ROBOT_DESCRIPTION] and all(i.latched for i in got[:2])
        assert clock.now == 0  # rate 0 never waits
        st = player.status()
        assert st.finished and st.progress == 1.0 and (st.first_step, st.last_step, st.step) == (0, 59, 59)
        assert player.due() == [] and player.wait_ns() is None


def test_messages_are_due_at_the_recorded_pace_divided_by_the_rate(
    synthetic: tuple[Path, Recorded], clock: FakeClock
) -> None:
    path, _ = synthetic
    with Bag(path) as bag:
        player = Player(bag, rate=2.0, clock=clock)
        assert [i.topic for i in player.due()] == [T.ROBOT]  # latched, at once
        # the bag starts at the robot description (T0 - 1000 ns); step k's state is at T0 + k*DT
        assert player.wait_ns() == 500
        clock.advance(500)
        assert [i.topic for i in player.due()] == [T.STATE]
        clock.advance(1000)  # action (+1000 ns) and reward terms (+2000 ns) at rate 2
        assert [i.topic for i in player.due()] == [T.ACTION, T.REWARD_TERMS]
        for k in range(1, 6):
            clock.advance(DT_NS // 2 - 1500)  # just before step k at rate 2
            assert player.due() == [] and player.wait_ns() == 500
            clock.advance(1500)
            items = player.due()
            assert [i.topic for i in items] == [T.STATE, T.ACTION, T.REWARD_TERMS]
            assert [i.log_time for i in items] == [T0 + k * DT_NS + d for d in (0, 1000, 2000)]
            assert player.status().step == k
        # a slower rate re-anchors at the current bag time: the next step is twice as far away
        player.set_rate(0.5)
        assert player.wait_ns() == (DT_NS - 2000) * 2


def test_pause_freezes_the_playhead_and_resume_continues_where_it_was(
    synthetic: tuple[Path, Recorded], clock: FakeClock
) -> None:
    path, _ = synthetic
    with Bag(path) as bag:
        player = Player(bag, clock=clock)
        player.due()
        clock.advance(3 * DT_NS + 5000)
        assert [step_of(bag, i) for i in player.due() if i.topic == T.STATE] == [0, 1, 2, 3]
        player.pause()
        assert player.is_paused() and player.wait_ns() is None
        clock.advance(10**10)
        assert player.due() == [] and player.status().step == 3
        assert player.toggle() is False  # resumed
        clock.advance(DT_NS - 4000 - 1)  # the bag clock held at T0 + 3 DT + 4000 (it starts at T0 - 1000)
        assert player.due() == []
        clock.advance(1)
        assert [i.topic for i in player.due()] == [T.STATE]
        assert player.status().step == 4 and not player.status().paused


def test_rate_takes_zero_or_a_tenth_to_four(synthetic: tuple[Path, Recorded], clock: FakeClock) -> None:
    path, _ = synthetic
    with Bag(path) as bag:
        player = Player(bag, clock=clock)
        for bad in (5.0, 0.05, -1.0, 4.01):
            assert player.set_rate(bad) is False and player.get_rate() == 1.0
        for good in (0.1, 4.0, 0.0, 1.5):
            assert player.set_rate(good) is True and player.get_rate() == good
        with pytest.raises(RolloutError, match="rate must be 0"):
            Player(bag, rate=8.0)


def test_rate_zero_hands_out_the_next_messages_without_waiting(
    synthetic: tuple[Path, Recorded], clock: FakeClock
) -> None:
    path, _ = synthetic
    with Bag(path) as bag:
        player = Player(bag, rate=0, clock=clock)
        first = player.due(limit=10)
        assert len(first) == 1 + 10 and player.wait_ns() == 0  # the latched robot + 10 messages
        rest = play_all(player)
        assert len(first) + len(rest) == bag.message_count and clock.now == 0


def test_seek_step_while_paused_shows_that_step_and_hands_out_the_latched_topics(
    synthetic: tuple[Path, Recorded], clock: FakeClock
) -> None:
    path, _ = synthetic
    with Bag(path) as bag:
        player = Player(bag, start_paused=True, clock=clock)
        assert [i.topic for i in player.due()] == [T.ROBOT]  # paused at start: only the latched topic
        assert player.seek_step(7) == 7
        items = player.due()
        assert items[0].latched and bytes(items[0].data) == bytes(bag.raw(T.ROBOT, 0).data)
        assert regular(items) == [(t, bytes(bag.raw(t, 7).data)) for t in (T.STATE, T.ACTION, T.REWARD_TERMS)]
        st = player.status()
        assert st.step == 7 and st.paused and st.bag_time == T0 + 7 * DT_NS + 2000
        assert player.due() == []  # shown once
        player.resume()
        clock.advance(DT_NS)
        assert [step_of(bag, i) for i in player.due() if i.topic == T.STATE] == [8]


def test_seek_step_while_playing_continues_from_that_step(synthetic: tuple[Path, Recorded], clock: FakeClock) -> None:
    path, _ = synthetic
    with Bag(path) as bag:
        player = Player(bag, clock=clock)
        player.due()
        assert player.seek_step(12) == 12
        items = player.due()
        assert [i.topic for i in items if i.latched] == [T.ROBOT]
        assert [(i.topic, step_of(bag, i)) for i in items if not i.latched] == [(T.STATE, 12)]
        clock.advance(DT_NS)
        assert [step_of(bag, i) for i in player.due() if i.topic == T.STATE] == [13]
        assert player.seek_step(3) == 3 and player.status().step == 3  # backwards too


def test_seek_step_lands_on_the_next_recorded_step_and_refuses_past_the_end(tmp_path: Path, clock: FakeClock) -> None:
    write_synthetic_rollout(tmp_path / "gaps", steps=10, first_step=100, drop={T.STATE: [5]})
    with Bag(tmp_path / "gaps") as bag:
        player = Player(bag, start_paused=True, clock=clock)
        assert player.seek_step(105) == 106
        assert player.seek_step(0) == 100
        before = (player.position, player.version)
        assert player.seek_step(110) is None
        assert (player.position, player.version) == before
        st = player.status()
        assert (st.first_step, st.last_step) == (100, 109)


def test_seek_by_time_plays_from_the_first_message_at_or_after_it(
    synthetic: tuple[Path, Recorded], clock: FakeClock
) -> None:
    path, rec = synthetic
    with Bag(path) as bag:
        player = Player(bag, start_paused=True, clock=clock)
        player.due()
        assert player.seek(int(rec.log_times[10]) + 1)  # just after step 10's state
        assert [i.topic for i in player.due()] == [T.ROBOT]  # rosbag2: a time seek shows nothing more
        nxt = player.play_next()
        assert nxt is not None and nxt.topic == T.ACTION and step_of(bag, nxt) == 10
        assert player.seek(0)  # before the bag: clamps to its start
        assert player.play_next().topic == T.STATE and player.status().step == 0


def test_play_next_and_burst_work_only_while_paused(synthetic: tuple[Path, Recorded], clock: FakeClock) -> None:
    path, _ = synthetic
    with Bag(path) as bag:
        player = Player(bag, clock=clock)
        player.due()
        assert player.play_next() is None and player.burst(3) == []
        player.pause()
        one = player.play_next()
        assert one is not None and one.topic == T.STATE and step_of(bag, one) == 0
        five = player.burst(5)
        assert [i.topic for i in five] == [T.ACTION, T.REWARD_TERMS, T.STATE, T.ACTION, T.REWARD_TERMS]
        assert (
            regular(five)
            == [(t, bytes(bag.raw(t, k).data)) for k in (0, 1) for t in (T.STATE, T.ACTION, T.REWARD_TERMS)][1:]
        )
        assert player.status().step == 1
        rest = player.burst(1000)
        assert len(rest) == bag.message_count - 1 - 1 - 5 and player.finished
        assert player.play_next() is None


def test_loop_starts_over_and_hands_out_the_latched_topics_again(
    synthetic: tuple[Path, Recorded], clock: FakeClock
) -> None:
    path, _ = synthetic
    with Bag(path) as bag:
        player = Player(bag, rate=0, loop=True, clock=clock)
        items: list[Item] = []
        while len(items) < 2 * bag.message_count + 5:
            items += player.due(limit=7)
        assert not player.finished
        n = bag.message_count
        assert regular(items[:n]) == regular(items[n : 2 * n])  # the second pass repeats the first
        assert items[n].topic == T.ROBOT and items[n].latched


def test_start_offset_skips_ahead_and_is_where_a_loop_comes_back_to(
    synthetic: tuple[Path, Recorded], clock: FakeClock
) -> None:
    path, _ = synthetic
    with Bag(path) as bag:
        # the bag starts 1000 ns before step 0; 0.1 s later is between step 6 (90 ms) and step 7 (105 ms)
        player = Player(bag, rate=0, loop=True, start_offset=0.1, clock=clock)
        items = player.due(limit=3)
        assert items[0].topic == T.ROBOT and items[0].latched  # still handed out
        assert [step_of(bag, i) for i in items[1:]] == [7, 7, 7]
        while player.status().step != 19:
            player.due(limit=1)
        player.due(limit=10)  # wraps
        assert player.status().step == 7
        with pytest.raises(RolloutError, match="past the end"):
            Player(bag, start_offset=5.0)
        with pytest.raises(RolloutError, match=">= 0"):
            Player(bag, start_offset=-1.0)


def test_topic_filter_plays_only_those_topics(synthetic: tuple[Path, Recorded], clock: FakeClock) -> None:
    path, _ = synthetic
    with Bag(path) as bag:
        player = Player(bag, rate=0, topics=[T.ACTION], clock=clock)
        got = play_all(player)
        assert [(i.topic, bytes(i.data)) for i in got] == [
            (T.ACTION, bytes(bag.raw(T.ACTION, k).data)) for k in range(20)
        ]
        assert player.status().last_step == 19  # steps still come from /rollout/state
        with pytest.raises(BagError, match="no topic /nope"):
            Player(bag, topics=["/nope"])


def test_seek_episode_moves_between_the_episode_starts_of_one_env(humanoid: Path, clock: FakeClock) -> None:
    with Bag(humanoid) as bag:
        ends: dict[int, list[int]] = {}
        for m in bag.iter_decoded(T.EPISODES):
            for e in m.env_ids.tolist():
                ends.setdefault(e, []).append(int(m.step))
        env = max(ends, key=lambda e: len(ends[e]))
        starts = [s + 1 for s in ends[env] if s + 1 <= 59]
        assert len(starts) >= 2, ends  # random actions: the humanoid falls several times in 60 steps
        player = Player(bag, start_paused=True, clock=clock)
        player.due()
        for s in starts:
            assert player.seek_episode(env, +1) == s
            shown = [i for i in player.due() if i.topic == T.STATE]
            assert [step_of(bag, i) for i in shown] == [s]
        assert player.seek_episode(env, +1) is None and player.status().step == starts[-1]
        assert player.seek_step(starts[-1] + 1) == starts[-1] + 1
        assert player.seek_episode(env, -1) == starts[-1]  # back to this episode's own start
        assert player.seek_episode(env, -1) == starts[-2]
        player.seek_step(0)
        assert player.seek_episode(env, -1) is None
        assert player.seek_episode(env, 0) is None


def test_latched_topics_are_handed_out_after_every_seek(humanoid: Path, clock: FakeClock) -> None:
    with Bag(humanoid) as bag:
        latched = {t: bytes(bag.raw(t, 0).data) for t in (T.ROBOT, T.ROBOT_DESCRIPTION)}
        player = Player(bag, clock=clock)
        for seek in (lambda: player.seek_step(30), lambda: player.seek(bag.start_time), lambda: player.seek_step(2)):
            player.due()
            seek()
            got = {i.topic: bytes(i.data) for i in player.due() if i.latched}
            assert got == latched


def test_seek_step_decodes_only_a_few_state_messages(synthetic: tuple[Path, Recorded], clock: FakeClock) -> None:
    decoded: list[str] = []

    class CountingBag(Bag):
        def decode(self, topic: str, i: int) -> object:
            decoded.append(topic)
            return super().decode(topic, i)

    path, _ = synthetic
    with CountingBag(path) as bag:
        player = Player(bag, start_paused=True, clock=clock)
        decoded.clear()
        player.seek_step(13)
        player.due()
        assert set(decoded) == {T.STATE} and len(decoded) <= 8  # log2(20) + the step shown


def test_timeline_holds_the_reward_series_of_the_chosen_envs(synthetic: tuple[Path, Recorded]) -> None:
    path, rec = synthetic
    with Bag(path) as bag:
        a = timeline_arrays(timeline(bag, env_ids=[3, 1]))
        assert a["steps"].tolist() == rec.steps.tolist()
        assert np.allclose(a["sim_times"], rec.sim_time)
        assert a["env_ids"].tolist() == [3, 1] and a["term_names"] == list(rec.terms)
        assert np.array_equal(a["total"], rec.rew[:, [3, 1]])
        for k, name in enumerate(rec.terms):
            assert np.array_equal(a["terms"][k], rec.terms[name][:, [3, 1]])
            assert np.allclose(a["terms_mean"][k], rec.terms[name].mean(axis=1), atol=1e-6)
        assert np.allclose(a["total_mean"], rec.rew.mean(axis=1), atol=1e-6)
        assert a["episode_steps"].size == 0  # CORE_TOPICS: this synthetic bag has no episode events
        full = timeline_arrays(timeline(bag))
        assert full["env_ids"].tolist() == [0, 1, 2, 3] and np.array_equal(full["total"], rec.rew)
        with pytest.raises(RolloutError, match="env 4 is not in this run, which has 4 envs"):
            timeline(bag, env_ids=[0, 4])


def test_timeline_of_a_recorded_run_has_its_episode_ends(humanoid: Path) -> None:
    with Bag(humanoid) as bag:
        a = timeline_arrays(timeline(bag))
        events = [(int(m.step), e) for m in bag.iter_decoded(T.EPISODES) for e in m.env_ids.tolist()]
        assert list(zip(a["episode_steps"].tolist(), a["episode_envs"].tolist())) == events
        flags = [bool(f) for m in bag.iter_decoded(T.EPISODES) for f in m.terminated]
        reasons = [r for m in bag.iter_decoded(T.EPISODES) for r in m.reasons]
        assert a["episode_terminated"].tolist() == flags and a["episode_reasons"] == reasons
        assert a["term_names"] == ["reward_survive", "reward_forward", "reward_ctrl", "reward_contact"]
        assert a["steps"].tolist() == list(range(60))
        # the recorded total is the sum of its terms
        assert np.allclose(a["terms"].sum(axis=0), a["total"], atol=1e-4)


def test_timeline_covers_the_first_64_envs_of_a_bigger_run(tmp_path: Path) -> None:
    rec = write_synthetic_rollout(tmp_path / "wide", steps=3, num_envs=70, obs_dim=2)
    with Bag(tmp_path / "wide") as bag:
        a = timeline_arrays(timeline(bag))
        assert a["env_ids"].tolist() == list(range(64))
        assert a["total"].shape == (3, 64) and np.array_equal(a["total"], rec.rew[:, :64])
        assert np.allclose(a["total_mean"], rec.rew.mean(axis=1), atol=1e-6)  # means still over all 70
        assert timeline_arrays(timeline(bag, env_ids=[69]))["total"].shape == (3, 1)


def test_sim_pace_plays_one_step_per_dt_however_fast_it_was_recorded(humanoid: Path, clock: FakeClock) -> None:
    with Bag(humanoid) as bag:
        dt_ns = round(bag.decode(T.ROBOT, 0).dt * 1e9)
        recorded = bag.log_times(T.STATE)
        assert recorded[-1] - recorded[0] < (len(recorded) - 1) * dt_ns / 2  # recorded faster than real time
        player = Player(bag, pace="sim", clock=clock)
        player.due()
        for k in range(1, 6):
            clock.advance(dt_ns - 1)
            assert [i for i in player.due() if i.topic == T.STATE] == []
            clock.advance(1)
            items = player.due()
            assert [step_of(bag, i) for i in items if i.topic == T.STATE] == [k]
            assert {i.topic for i in items} >= {T.STATE, T.ACTION, T.REWARD_TERMS}  # a step's messages together
            assert player.status().step == k
