"""Shards replayed as one rollout: bags of per-rank sims played by the real replay node (its own
process, over zenoh) as one rollout on the plain topics, envs concatenated in rank order, only the
steps every shard has; seek works on the set; wrong sets end in one line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from rollout import topics as T
from rollout.bag import Bag
from rollout.codec import deserialize, get_service, get_type
from rollout.errors import BagError
from rollout.model import env_grid_offsets
from rollout.replay import Player, timeline_arrays
from rollout.replay.shards import SHARD_GAP, ShardSet, open_rollout
from rollout.runtime import LATCHED, LOSSLESS, Node
from shard_bags import record_shards
from test_replay_node import node, router_env, start_replay, wait_until  # noqa: F401  (fixtures)

STEPS, N0, N1 = 30, 3, 2
PLAYED = list(range(1, STEPS - 1))  # rank1 did not record steps 0 and 29
STEPPED = {
    T.STATE: ("obs", "base_pos", "base_quat", "joint_pos", "body_poses", "done", "terminated", "truncated"),
    T.ACTION: ("action",),
    T.REWARD_TERMS: ("total",),
}


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shards")
    return {
        "rank0": record_shards(root / "rank0", [("rank0", N0)], steps=STEPS, episode_length=10),
        "rank1": record_shards(root / "rank1", [("rank1", N1)], steps=STEPS, episode_length=10, skip={"rank1": [0, STEPS - 1]}),
        "both": record_shards(root / "both", [("rank0", N0), ("rank1", N1)], steps=STEPS, episode_length=10),
    }  # fmt: skip


def recorded(bag_path: Path, ns: str, topic: str, step: int) -> object:
    """A shard's own message of `topic` at `step`, as recorded."""
    with Bag(bag_path) as bag:
        name = T.namespaced(topic, ns)
        return bag.decode(name, bag.seek_step(name, step))


def assert_concatenated(merged: object, parts: list[object], fields: tuple[str, ...]) -> None:
    for f in fields:
        want = np.concatenate([np.asarray(getattr(p, f)).reshape(-1) for p in parts])
        assert np.array_equal(np.asarray(getattr(merged, f)), want), f


def test_the_set_plays_as_one_rollout_and_seeks(node: Node, bags: dict[str, Path], router_env: dict[str, str]) -> None:
    got: dict[str, list[bytes]] = {}
    types = {T.ROBOT: "RobotDescription", T.STATE: "State", T.ACTION: "Action", T.REWARD_TERMS: "RewardTerms",
             T.EPISODES: "EpisodeEvents", T.BASE_POSES: None, T.TF: None, T.ROBOT_DESCRIPTION: None}  # fmt: skip
    subs = []
    with Bag(bags["rank0"]) as bag:
        for topic in types:
            got[topic] = []
            info = bag.topic(T.namespaced(topic, "rank0"))
            qos = LATCHED if info.latched else LOSSLESS
            subs.append(node.create_subscription(info.type, topic, lambda d, t=topic: got[t].append(bytes(d)), qos, raw=True))
    statuses: list[object] = []
    timelines: list[object] = []
    subs.append(node.create_subscription("rollout_msgs/msg/PlaybackStatus", T.PLAYBACK_STATUS, statuses.append, 10))
    subs.append(node.create_subscription("rollout_msgs/msg/Timeline", T.TIMELINE, timelines.append, LATCHED))
    srv = {v: get_service(f"rosbag2_interfaces/srv/{s}") for v, s in (("pause", "Pause"), ("resume", "Resume"))}
    srv["seek_step"] = get_service("rollout_msgs/srv/SeekStep")
    clients = {v: node.create_client(s, f"/replay/{v}") for v, s in srv.items()}

    def call(verb: str, **fields: object) -> object:
        return clients[verb].call(srv[verb].Request(**fields), timeout_sec=5.0)

    def decoded(topic: str, k: int = -1) -> object:
        name = types[topic] or {T.BASE_POSES: "geometry_msgs/msg/PoseArray", T.TF: "tf2_msgs/msg/TFMessage",
                                T.ROBOT_DESCRIPTION: "std_msgs/msg/String"}[topic]  # fmt: skip
        return deserialize(got[topic][k], get_type(name if "/" in name else f"rollout_msgs/msg/{name}"))

    # rank1 named first: the envs still come in rank order
    proc = start_replay(f"{bags['rank1']},{bags['rank0']}", router_env, "rate:=0", "start_paused:=true", "exit_at_end:=false")
    try:
        wait_until(lambda: statuses and got[T.ROBOT] and got[T.ROBOT_DESCRIPTION] and timelines, what="the latched topics")
        assert clients["resume"].wait_for_service(timeout_sec=5.0)
        robot = decoded(T.ROBOT)
        assert robot.num_envs == N0 + N1 and robot.env_spacing == 2.0
        assert (statuses[-1].first_step, statuses[-1].last_step) == (PLAYED[0], PLAYED[-1])
        urdf = decoded(T.ROBOT_DESCRIPTION).data
        assert all(f'<link name="env{k}/torso"' in urdf for k in (0, 1, N0, N0 + 1)) and "env2/" not in urdf

        call("resume")
        wait_until(lambda: statuses[-1].finished, what="the end")
        per_step = (T.STATE, T.ACTION, T.REWARD_TERMS, T.BASE_POSES, T.TF)
        wait_until(lambda: all(len(got[t]) >= len(PLAYED) for t in per_step), what="every common step on every topic")
        assert len(got[T.ACTION]) == len(got[T.REWARD_TERMS]) == len(got[T.BASE_POSES]) == len(got[T.TF]) == len(PLAYED)
        for k in (0, 7, len(PLAYED) - 1):
            step = PLAYED[k]
            for topic, fields in STEPPED.items():
                merged = decoded(topic, k)
                assert merged.step == step
                parts = [recorded(bags[ns], ns, topic, step) for ns in ("rank0", "rank1")]
                assert_concatenated(merged, parts, fields)
            rewards = decoded(T.REWARD_TERMS, k)
            assert [t.name for t in rewards.terms] == ["reward_alive", "reward_action"]
            assert rewards.terms[0].value.shape == (N0 + N1,)
            assert np.isclose(rewards.total_mean, rewards.total.mean())
            # base poses: each env's recorded base on the grid of all N0 + N1 envs, so none overlap
            state = decoded(T.STATE, k)
            poses = np.array([[p.position.x, p.position.y, p.position.z] for p in decoded(T.BASE_POSES, k).poses])
            grid = env_grid_offsets(N0 + N1, 2.0)
            assert np.allclose(poses, state.base_pos.reshape(-1, 3) + grid)
            roots = {t.child_frame_id: t.transform.translation for t in decoded(T.TF, k).transforms
                     if t.header.frame_id == "world"}  # fmt: skip
            assert set(roots) == {"env0/torso", "env1/torso", f"env{N0}/torso", f"env{N0 + 1}/torso"}
            bodies = state.body_poses.reshape(N0 + N1, -1, 7)
            for g in (1, N0 + 1):  # a root's world position: the recorded body pose on the merged grid
                t = roots[f"env{g}/torso"]
                assert np.allclose([t.x, t.y, t.z], bodies[g, 0, :3] + grid[g], atol=1e-6)

        # episode ends: rank1's env ids follow rank0's
        events = [decoded(T.EPISODES, k) for k in range(len(got[T.EPISODES]))]
        ends = [(int(m.step), e) for m in events for e in m.env_ids.tolist()]
        want = []
        for ns, start in (("rank0", 0), ("rank1", N0)):
            with Bag(bags[ns]) as bag:
                recorded_ends = bag.iter_decoded(f"/{ns}/rollout/episodes")
                want += [(int(m.step), e + start) for m in recorded_ends for e in m.env_ids.tolist() if m.step in PLAYED]
        assert sorted(ends) == sorted(want) and any(e >= N0 for _, e in ends)
        tl = timeline_arrays(timelines[-1])
        assert tl["steps"].tolist() == PLAYED and tl["total"].shape == (len(PLAYED), N0 + N1)
        assert sorted(zip(tl["episode_steps"].tolist(), tl["episode_envs"].tolist())) == sorted(want)

        # seek while paused: the target step of the set is published
        call("pause")
        got[T.STATE].clear()
        res = call("seek_step", step=17)
        assert res.success and res.step == 17
        wait_until(lambda: got[T.STATE], what="step 17")
        parts = [recorded(bags[ns], ns, T.STATE, 17) for ns in ("rank0", "rank1")]
        assert_concatenated(decoded(T.STATE), parts, STEPPED[T.STATE])
        assert not call("seek_step", step=STEPS - 1).success  # rank1 has no step 29: not played
    finally:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        for s in subs:
            s.destroy()
    log = out + err
    assert f"2 shards as one rollout of {N0 + N1} envs" in log
    assert f"{len(PLAYED)} steps every shard has, 2 of {bags['rank0']} [rank0] left out" in log


def test_the_replay_launch_writes_one_video_of_every_shards_envs(bags: dict[str, Path], tmp_path: Path) -> None:
    video = tmp_path / "all.mp4"
    done = subprocess.run([sys.executable, "-m", "rollout.cli", "launch", "replay.launch.py",
                           f"bag:={bags['rank0']},{bags['rank1']}", f"video:={video}", f"envs:=0-{N0 + N1 - 1}",
                           "width:=160", "height:=120"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"envs 0-{N0 + N1 - 1}" in done.stdout and f"2 shards as one rollout of {N0 + N1} envs" in done.stdout
    assert imageio_ffmpeg.count_frames_and_secs(str(video))[0] == len(PLAYED)


def test_one_bag_of_namespaced_sims_is_a_set(bags: dict[str, Path]) -> None:
    with open_rollout([bags["both"]]) as merged:
        assert isinstance(merged, ShardSet) and merged.count(T.STATE) == STEPS
        player = Player(merged, rate=0, start_paused=True)
        assert player.seek_step(12) == 12
        items = {item.topic: item for item in player.due()}
        state = deserialize(items[T.STATE].data, get_type("rollout_msgs/msg/State"))
        parts = [recorded(bags["both"], ns, T.STATE, 12) for ns in ("rank0", "rank1")]
        assert_concatenated(state, parts, STEPPED[T.STATE])
        assert deserialize(items[T.ROBOT].data, get_type("rollout_msgs/msg/RobotDescription")).num_envs == N0 + N1


def test_poses_laid_out_by_the_sims_are_moved_apart(tmp_path: Path) -> None:
    a = record_shards(tmp_path / "a", [("rank0", N0)], steps=4, env_spacing=0.0)
    b = record_shards(tmp_path / "b", [("rank1", N1)], steps=4, env_spacing=0.0)
    with ShardSet.open([a, b]) as merged:
        state = merged.decode(T.STATE, 2)
        base = state.base_pos.reshape(-1, 3)
        rank0, rank1 = recorded(a, "rank0", T.STATE, 2), recorded(b, "rank1", T.STATE, 2)
        shift = merged.shifts[1]
        assert np.array_equal(base[:N0], rank0.base_pos.reshape(-1, 3))
        assert np.allclose(base[N0:], rank1.base_pos.reshape(-1, 3) + shift)
        assert shift[0] > 0 and shift[1] == shift[2] == 0
        bodies = state.body_poses.reshape(N0 + N1, -1, 7)
        assert np.allclose(bodies[N0:, :, :3], rank1.body_poses.reshape(N1, -1, 7)[:, :, :3] + shift)
        first = merged.decode(T.STATE, 0).base_pos.reshape(-1, 3)
        assert np.isclose(first[N0:, 0].min() - first[:N0, 0].max(), SHARD_GAP, atol=1e-5)
        assert any("moved along +x" in note for note in merged.notes)


def test_base_poses_and_tf_go_with_the_state_of_their_stamp_whatever_the_log_order(tmp_path: Path) -> None:
    a = record_shards(tmp_path / "a", [("rank0", N0)], steps=5, early=(T.BASE_POSES, T.TF))
    b = record_shards(tmp_path / "b", [("rank1", N1)], steps=5)
    with ShardSet.open([a, b]) as merged:
        assert merged.count(T.BASE_POSES) == merged.count(T.TF) == 5
        for i in range(5):
            state = merged.decode(T.STATE, i)
            poses = merged.decode(T.BASE_POSES, i).poses
            xyz = np.array([[p.position.x, p.position.y, p.position.z] for p in poses])
            assert np.allclose(xyz, state.base_pos.reshape(-1, 3) + env_grid_offsets(N0 + N1, 2.0))
            tf = merged.decode(T.TF, i)
            assert {t.header.stamp.sec * 10**9 + t.header.stamp.nanosec for t in tf.transforms} == {
                state.header.stamp.sec * 10**9 + state.header.stamp.nanosec
            }


def test_wrong_sets_end_in_one_line_and_a_nonzero_exit(bags: dict[str, Path], tmp_path: Path, router_env: dict[str, str]) -> None:
    other_obs = record_shards(tmp_path / "obs", [("rank1", N1)], steps=3, obs_dim=20)
    other_dt = record_shards(tmp_path / "dt", [("rank1", N1)], steps=3, dt=0.03)
    other_model = record_shards(tmp_path / "model", [("rank1", N1)], steps=3, env="synthetic")
    cases = {
        "obs dims": (f"{bags['rank0']},{other_obs}", "are not shards of one rollout: they differ in obs_dim (376 vs 20)"),
        "model": (f"{bags['rank0']},{other_model}", "they differ in body_names"),
        "control rate": (f"{bags['rank0']},{other_dt}", "they differ in dt (0.015 vs 0.03)"),
        "missing": (f"{bags['rank0']},{tmp_path / 'nope'}", "nope does not exist"),
        "same namespace": (f"{bags['rank0']},{bags['both']}", "namespace 'rank0' is in both"),
    }
    procs = {name: start_replay(paths, router_env) for name, (paths, _) in cases.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=30)
        assert proc.returncode != 0, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("replay: error: ") and cases[name][1] in lines[0], (name, err)
    with pytest.raises(BagError, match="no control step in common"):
        with Bag(bags["rank0"]) as a, Bag(record_shards(tmp_path / "late", [("rank1", N1)], steps=3, skip={"rank1": range(3)})) as b:
            ShardSet([a, b])


def test_bag_merge_writes_what_replay_plays_and_to_npz_reads_the_same_arrays(bags: dict[str, Path], tmp_path: Path) -> None:
    from rollout.export.sharded import read_rollout_set
    from rollout.export.to_npz import read_rollout

    out = tmp_path / "all"
    rollout = [sys.executable, "-m", "rollout.cli", "bag", "merge"]
    done = subprocess.run([*rollout, str(bags["rank1"]), str(bags["rank0"]), "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"2 shards as one rollout of {N0 + N1} envs" in done.stdout and "wrote" in done.stdout
    with Bag(out) as bag, ShardSet.open([bags["rank0"], bags["rank1"]]) as merged:
        assert list(bag.topics) == list(merged.topics)
        for topic in merged.topics:
            assert bag.count(topic) == merged.count(topic)
            assert bag.topic(topic).latched == merged.topic(topic).latched
            for i in range(merged.count(topic)):
                assert bytes(bag.raw(topic, i).data) == bytes(merged.raw(topic, i).data), (topic, i)
        one = read_rollout(bag)
    shards = read_rollout_set([bags["rank0"], bags["rank1"]])
    assert list(one.arrays) == list(shards.arrays)
    for key in ("obs", "act", "rew", "base_pos", "base_quat"):
        assert np.array_equal(one.arrays[key], shards.arrays[key]), key
    for t in (0, 9, len(PLAYED) - 1):
        a, b = one.arrays["info"][t], shards.arrays["info"][t]
        assert all(np.array_equal(a[k], b[k]) for k in ("done", "terminated", "truncated"))
        assert all(np.array_equal(a["reward_terms"][k], b["reward_terms"][k]) for k in b["reward_terms"])
    again = subprocess.run([*rollout, str(bags["rank0"]), str(bags["rank0"]), "-o", str(tmp_path / "x")], capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and again.stderr.strip().count("\n") == 0 and "namespace 'rank0' is in both" in again.stderr
