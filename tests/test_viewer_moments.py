"""The Find panel's moments, on series built so that every answer is known, and on a real replay.

The constructed run: 3 envs x 10 steps (steps 100-109), total = 1 except where set, two terms.
"""

from __future__ import annotations

import numpy as np
import pytest

from rollout.codec import get_type
from rollout.viewer.moments import RunSeries, drops, find_moments

S, E = 10, 3


def run(**ends) -> RunSeries:
    steps = np.arange(100, 100 + S)
    total = np.ones((S, E), np.float32)
    total[4, 1] = -5.0  # env 1 at step 104: the lowest, and a drop of 6 from step 103
    total[7, 2] = 9.0  # env 2 at step 107: the highest
    total[8:, 2] = 5.0  # ... then a drop of 4 (at step 108), and none after
    terms = np.zeros((2, S, E), np.float32)
    terms[0, 2, 0] = -3.0  # "alive" min: env 0, step 102
    terms[0, 6, 1] = 2.0  # "alive" max: env 1, step 106
    terms[1] = np.nan  # "speed" never recorded: no extreme
    end_steps = np.array(ends.get("steps", [105, 103, 108]), np.int64)
    return RunSeries(
        steps=steps, env_ids=np.arange(E), term_names=("alive", "speed"), total=total, terms=terms,
        end_steps=end_steps, end_envs=np.array(ends.get("envs", [0, 2, 1]), np.int64),
        end_terminated=np.array(ends.get("terminated", [True, True, False]), bool),
        end_reasons=tuple(ends.get("reasons", ["fell", "terminated", "truncated"])),
    )  # fmt: skip


def by_kind(moments, kind):
    return [(m.step, m.env, m.value) for m in moments if m.kind == kind]


def test_the_earliest_terminations_come_first_with_the_envs_reason():
    ms = find_moments(run(), None)
    assert ms[0].kind == "termination" and (ms[0].step, ms[0].env) == (103, 2)
    assert ms[0].label == "env 2 terminated at step 103"  # no reason beyond "terminated" given
    assert (ms[1].step, ms[1].env, ms[1].value) == (105, 0, 6.0)  # 6 steps: 100..105
    assert ms[1].label == "env 0 terminated at step 105 (fell)"
    assert len(by_kind(ms, "termination")) == 2  # env 1's truncation is not a termination


def test_lowest_and_highest_total_and_each_terms_extremes():
    ms = find_moments(run(), None)
    assert by_kind(ms, "lowest") == [(104, 1, -5.0)]
    assert by_kind(ms, "highest") == [(107, 2, 9.0)]
    assert by_kind(ms, "term_min") == [(102, 0, -3.0)]  # "speed" is all NaN: none for it
    assert by_kind(ms, "term_max") == [(106, 1, 2.0)]


def test_the_largest_one_step_drops_biggest_first():
    ms = find_moments(run(), None)
    assert by_kind(ms, "drop") == [(104, 1, 6.0), (108, 2, 4.0)]  # only two falls in the run
    assert [m.label for m in ms if m.kind == "drop"][0] == "drop -6.000: env 1, step 103 to 104"


def test_a_gap_in_the_recorded_steps_is_not_a_drop():
    steps = np.array([0, 1, 5])
    total = np.array([[1.0], [1.0], [-10.0]], np.float32)
    assert drops(steps, np.array([0]), total, 3) == []


def test_moments_of_one_env_are_that_envs_only():
    ms = find_moments(run(), 2)
    assert {m.env for m in ms} == {2}
    assert by_kind(ms, "termination") == [(103, 2, 4.0)]
    assert by_kind(ms, "lowest") == [(100, 2, 1.0)]  # ties: the earliest
    assert by_kind(ms, "drop") == [(108, 2, 4.0)]
    assert find_moments(run(), 7) == []  # an env not in the series


def test_a_timeline_message_round_trips_into_the_same_moments():
    r = run()
    Timeline = get_type("rollout_msgs/msg/Timeline")
    msg = Timeline(
        steps=r.steps.astype(np.uint64), env_ids=r.env_ids.astype(np.uint32), term_names=list(r.term_names),
        total=r.total.reshape(-1), terms=r.terms.reshape(-1),
        episode_steps=r.end_steps.astype(np.uint64), episode_envs=r.end_envs.astype(np.uint32),
        episode_terminated=r.end_terminated, episode_reasons=list(r.end_reasons),
    )  # fmt: skip
    assert find_moments(RunSeries.from_timeline(msg), None) == find_moments(r, None)


@pytest.fixture(scope="module")
def humanoid_timeline(tmp_path_factory):
    from rollout.bag import Bag
    from rollout.policy import make_policy
    from rollout.recording import RolloutRecorder
    from rollout.replay import timeline
    from rollout.sim import make_env

    env = make_env("mujoco:Humanoid-v5", num_envs=4, seed=0)
    policy = make_policy("random", obs_dim=env.info.obs_dim, act_dim=env.info.act_dim)
    path = RolloutRecorder(env, max_steps=60, out=tmp_path_factory.mktemp("bag") / "run.mcap").run(policy)
    with Bag(path) as bag:
        return timeline(bag)


def test_a_recorded_humanoid_lists_its_earliest_fall_first(humanoid_timeline):
    tl = humanoid_timeline
    flags, reasons = np.asarray(tl.episode_terminated), list(tl.episode_reasons)
    assert len(flags) == len(tl.episode_steps) == len(reasons) > 0
    # the humanoid names no reasons: the recorder's words follow the flags
    assert reasons == ["terminated" if f else "truncated" for f in flags]
    ms = find_moments(RunSeries.from_timeline(tl), None)
    first = ms[0]
    assert first.kind == "termination" and first.step == np.asarray(tl.episode_steps)[flags].min()
    assert first.label == f"env {first.env} terminated at step {first.step}"


# ----------------------------------------------------------------------------- all 4,096 envs

BIG = 4096


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    """A recorded synthetic humanoid run of 4,096 envs x 20 steps whose worst moments are made
    beyond env 64: env 3000 pushes hard at its 9th step (the lowest total and the largest drop),
    env 4001 less hard at its 13th."""
    from rollout.recording import RolloutRecorder
    from rollout.sim import make_env

    env = make_env("synthetic:humanoid", num_envs=BIG, seed=0)
    calls = [0]

    def policy(obs: np.ndarray) -> np.ndarray:
        a = np.zeros((BIG, env.info.act_dim), np.float32)
        calls[0] += 1
        if calls[0] == 9:
            a[3000] = 3.0
        if calls[0] == 13:
            a[4001] = 2.0
        return a

    return RolloutRecorder(env, max_steps=20, out=tmp_path_factory.mktemp("big") / "run.mcap").run(policy)


def test_find_across_all_envs_covers_every_one_of_4096(big_run):
    from rollout.bag import Bag
    from rollout.replay import timeline

    with Bag(big_run) as bag:
        tl = timeline(bag)
        recorded = list(bag.iter_decoded("/rollout/reward_terms"))
    steps = np.array([m.step for m in recorded])
    total = np.stack([np.asarray(m.total) for m in recorded])  # [S, 4096], read here, not from the timeline
    action = np.stack([np.asarray(m.terms[1].value) for m in recorded])
    assert len(tl.env_ids) == 64 and int(tl.num_envs) == BIG  # per-term series for 64, totals for all
    assert len(tl.total_all) == total.size and len(tl.terms) == 2 * len(steps) * 64
    t, e = np.unravel_index(np.argmin(total), total.shape)
    assert e == 3000
    ms = find_moments(RunSeries.from_timeline(tl), None)
    assert by_kind(ms, "lowest") == [(steps[t], 3000, pytest.approx(float(total[t, e])))]
    ta, ea = np.unravel_index(np.argmin(action), action.shape)
    assert by_kind(ms, "term_min")[1] == (steps[ta], 3000, pytest.approx(float(action[ta, ea])))
    assert [(s, e) for s, e, _ in by_kind(ms, "drop")][:2] == [(steps[t], 3000), (steps[t + 4], 4001)]
    # one env far beyond the drawn ones: its own moments
    own = find_moments(RunSeries.from_timeline(tl), 4001)
    assert by_kind(own, "lowest") == [(steps[t + 4], 4001, pytest.approx(float(total[t + 4, 4001])))]
    assert {m.env for m in own} == {4001}
