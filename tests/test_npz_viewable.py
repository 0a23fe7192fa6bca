"""Bags made from NPZ files (and synthetic bags) hold what a recording holds and can be viewed:
a six-key NPZ's base is drawn as the robot at its base poses, /rollout/base_poses, /tf and
episode events are there, a state without bodies does not break the viewer, and a file that is
not an NPZ is refused as such."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rollout import topics
from rollout.bag import Bag
from rollout.codec import deserialize, get_type
from rollout.errors import BagError
from rollout.export import bag_to_npz, load_npz, npz_to_bag
from rollout.export.synthetic import write_synthetic_rollout
from rollout.model import env_grid_offsets, xyzw_to_wxyz
from rollout.recording import RolloutRecorder
from rollout.replay import Player, episode_events, timeline
from rollout.sim.synthetic import SyntheticEnv
from rollout.viewer import Viewer
from recordings import record_humanoid

ROOT = Path(__file__).resolve().parents[1]
TYPES = {
    topics.ROBOT: "rollout_msgs/msg/RobotDescription",
    topics.STATE: "rollout_msgs/msg/State",
    topics.REWARD_TERMS: "rollout_msgs/msg/RewardTerms",
    topics.EPISODES: "rollout_msgs/msg/EpisodeEvents",
}


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "nodes" / f"{tool}.py"), *args], capture_output=True, text=True, env=env)


def six_key_npz(path: Path, T: int = 30, N: int = 3) -> dict[str, np.ndarray]:
    """An NPZ as the original tool wrote it (six keys, float64), with done flags in `info`; the
    bases walk smoothly along x and turn, each env from its own place."""
    rng = np.random.default_rng(5)
    done = np.zeros((T, N), bool)
    done[[6, 13, 21], [0, 2, 0]] = True
    done[13, 1] = True
    info = np.empty(T, dtype=object)
    for t in range(T):
        info[t] = {"reward_terms": {"alive": np.ones(N), "track": rng.normal(size=N)}, "done": done[t]}
    base_pos = np.zeros((T, N, 3))
    base_pos[:, :, 0] = 0.02 * np.arange(T)[:, None] + np.arange(N)[None] * 1.5
    base_pos[:, :, 1] = -np.arange(N)[None]
    base_pos[:, :, 2] = 0.9
    yaw = 0.05 * np.arange(T)[:, None] + np.zeros(N)
    base_quat = np.stack([np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2), np.cos(yaw / 2)], axis=-1)
    arrays = {
        "obs": rng.normal(size=(T, N, 6)),
        "act": rng.normal(size=(T, N, 2)),
        "rew": rng.normal(size=(T, N)),
        "info": info,
        "base_pos": base_pos,
        "base_quat": base_quat,
    }
    np.savez(path, **arrays)
    return arrays | {"done": done}


def deliver(viewer: Viewer, player: Player) -> None:
    """Hand what the player plays now to the viewer (as the replay node and the bridge do)."""
    for item in player.due():
        if item.topic in TYPES:
            msg = deserialize(bytes(item.data), get_type(TYPES[item.topic]))
            {
                topics.ROBOT: viewer.on_robot,
                topics.STATE: viewer.on_state,
                topics.REWARD_TERMS: viewer.on_reward_terms,
                topics.EPISODES: viewer.on_episodes,
            }[item.topic](msg)


def expected_episodes(rew: np.ndarray, done: np.ndarray) -> list[tuple[int, int, float, int]]:
    """(step, env, return, length) of every episode end, counted one env at a time."""
    out = []
    for e in range(done.shape[1]):
        ret, length = 0.0, 0
        for t in range(done.shape[0]):
            ret, length = ret + float(np.float32(rew[t, e])), length + 1
            if done[t, e]:
                out.append((t, e, ret, length))
                ret, length = 0.0, 0
    return sorted(out)


def bag_episodes(bag: Bag) -> list[tuple[int, int, float, int]]:
    return sorted(
        (int(m.step), int(e), float(r), int(n))
        for m in bag.iter_decoded(topics.EPISODES)
        for e, r, n in zip(m.env_ids.tolist(), m.returns.tolist(), m.lengths.tolist())
    )


def test_a_six_key_npz_converted_with_from_npz_is_drawn_at_its_base_positions(tmp_path: Path, caplog) -> None:
    src = six_key_npz(tmp_path / "old.npz")
    proc = run_tool("from_npz", str(tmp_path / "old.npz"), "--allow-pickle", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    with Bag(tmp_path / "old") as bag, Viewer(port=0, trail_length=5) as v:
        player = Player(bag, start_paused=True, episodes=episode_events(bag))
        v.on_timeline(timeline(bag))
        for step in (0, 7, 8, 9, 10, 11, 29, 3):
            assert player.seek_step(step) == step
            deliver(v, player)
            assert v.shown_step == step
            assert len(v.scene.body_handles) == 1  # the base, drawn as the one body of the model
            np.testing.assert_allclose(v.scene.body_handles[0].batched_positions, src["base_pos"][step], atol=1e-6)
            np.testing.assert_allclose(v.scene.body_handles[0].batched_wxyzs, xyzw_to_wxyz(src["base_quat"][step]), atol=1e-6)
            if step == 11:  # steps 7..11 in a row: the trail follows the bases
                seg = v.scene.trail_handle.points.reshape(4, 3, 2, 3)
                np.testing.assert_allclose(seg[:, :, 0], src["base_pos"][7:11], atol=1e-6)
                np.testing.assert_allclose(seg[:, :, 1], src["base_pos"][8:12], atol=1e-6)
        assert "track" in v.rewards_markdown.content  # the reward table of step 3
        assert v.apply_camera("top") is not None
    assert "spheres" not in caplog.text  # the base model was meshed, not replaced by the fallback


def test_the_bag_of_a_six_key_npz_has_base_poses_episodes_tf_and_a_urdf(tmp_path: Path) -> None:
    src = six_key_npz(tmp_path / "old.npz")
    with Bag(npz_to_bag(tmp_path / "old.npz", allow_pickle=True)) as bag:
        have = bag.topics
        assert {topics.BASE_POSES, topics.EPISODES, topics.TF, topics.ROBOT_DESCRIPTION} <= set(have)
        assert have[topics.ROBOT_DESCRIPTION].latched and 'link name="env0/base"' in bag.decode(topics.ROBOT_DESCRIPTION, 0).data
        assert bag.count(topics.BASE_POSES) == bag.count(topics.TF) == 30
        for t in (0, 17):
            poses = bag.decode(topics.BASE_POSES, t).poses
            got = np.array([[p.position.x, p.position.y, p.position.z] for p in poses])
            np.testing.assert_allclose(got, src["base_pos"][t], atol=1e-6)
            (tf,) = bag.decode(topics.TF, t).transforms
            assert tf.child_frame_id == "env0/base"
            np.testing.assert_allclose([tf.transform.translation.x, tf.transform.translation.y], src["base_pos"][t, 0, :2], atol=1e-6)
        want = expected_episodes(src["rew"], src["done"])
        got = bag_episodes(bag)
        assert [g[:2] for g in got] == [w[:2] for w in want] == [(6, 0), (13, 1), (13, 2), (21, 0)]
        assert [g[3] for g in got] == [w[3] for w in want] == [7, 14, 14, 15]
        np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=1e-5)
        assert all(m.terminated.all() for m in bag.iter_decoded(topics.EPISODES))  # done, not truncated

    # without done flags there are no episode events, and the rest is unchanged
    arrays = dict(np.load(tmp_path / "old.npz", allow_pickle=True))
    info = np.empty(30, dtype=object)
    info[:] = [{"reward_terms": d["reward_terms"]} for d in arrays["info"]]
    arrays["info"] = info
    np.savez(tmp_path / "nodone.npz", **arrays)
    with Bag(npz_to_bag(tmp_path / "nodone.npz", allow_pickle=True)) as bag:
        assert bag.count(topics.EPISODES) == 0 and bag.count(topics.BASE_POSES) == 30


def test_episode_events_of_a_recording_survive_bag_npz_bag(tmp_path: Path) -> None:
    rec = record_humanoid(tmp_path / "run", num_envs=3, steps=60, tf_envs=(0,))
    npz = bag_to_npz(rec, tmp_path / "run.npz", extras=("robot", "body_poses", "joint_pos")).path
    with Bag(rec) as a, Bag(npz_to_bag(npz, tmp_path / "back", allow_pickle=True)) as b:
        want, got = bag_episodes(a), bag_episodes(b)
        assert len(want) >= 3  # random actions: the humanoids fall
        assert [w[:2] + w[3:] for w in want] == [g[:2] + g[3:] for g in got]
        np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=1e-5)
        assert b.decode(topics.ROBOT, 0).body_names == a.decode(topics.ROBOT, 0).body_names  # the real robot
        frames = [x.child_frame_id for x in a.decode(topics.TF, 31).transforms]
        assert len(frames) == 13 and [x.child_frame_id for x in b.decode(topics.TF, 31).transforms] == frames


def test_a_synthetic_bag_has_the_episode_events_and_base_poses_of_what_it_returns(tmp_path: Path) -> None:
    rec = write_synthetic_rollout(tmp_path / "syn", steps=40, num_envs=5, first_step=10)
    with Bag(tmp_path / "syn") as bag:
        assert bag.count(topics.BASE_POSES) == 40 and bag.count(topics.EPISODES) > 0
        want = [(t + 10, e, r, n) for t, e, r, n in expected_episodes(rec.rew, rec.done)]
        got = bag_episodes(bag)
        assert [g[:2] + g[3:] for g in got] == [w[:2] + w[3:] for w in want]
        np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=1e-5, atol=1e-5)
        poses = bag.decode(topics.BASE_POSES, 7).poses
        got_pos = np.array([[p.position.x, p.position.y, p.position.z] for p in poses])
        np.testing.assert_allclose(got_pos, rec.base_pos[7] + env_grid_offsets(5, 2.0), atol=1e-6)


def test_states_without_bodies_draw_the_base_trail_and_rewards_without_bodies(tmp_path: Path) -> None:
    env = SyntheticEnv(3, obs_dim=4, act_dim=2, num_bodies=0, episode_length=100)
    bag_path = RolloutRecorder(env, max_steps=12, out=tmp_path / "nobody.mcap").run("zero")
    with Bag(bag_path) as bag:
        states = [bag.decode(topics.STATE, i) for i in range(12)]
        rewards = [bag.decode(topics.REWARD_TERMS, i) for i in range(12)]
        robot = bag.decode(topics.ROBOT, 0)
        assert states[0].num_bodies == 0
        offsets = env_grid_offsets(3, robot.env_spacing)
        bases = np.stack([s.base_pos.reshape(3, 3) for s in states]) + offsets

        with Viewer(port=0, trail_length=4) as live:  # live: drawn, kept for scrubbing
            live.on_robot(robot)
            for s, r in zip(states, rewards):
                live.on_state(s)
                live.on_reward_terms(r)
            assert live.scene.body_handles == [] and live.shown_step == 11
            seg = live.scene.trail_handle.points.reshape(3, 3, 2, 3)
            np.testing.assert_allclose(seg[:, :, 1], bases[9:12], atol=1e-6)
            assert "reward_alive" in live.rewards_markdown.content
            live.play_button.value = True  # pause, then scrub back
            live.step_slider.value = 4
            assert live.shown_step == 4

        with Viewer(port=0) as v:  # replay through the real player
            player = Player(bag, start_paused=True)
            v.on_timeline(timeline(bag))
            for step in (0, 5, 6):
                player.seek_step(step)
                deliver(v, player)
                assert v.shown_step == step and v.scene.body_handles == []
            assert v.apply_camera("follow") is not None


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("text.npz", b"obs,act,rew\n1,2,3\n", "it does not start with a zip header"),
        ("empty.npz", b"", "the file is empty"),
        ("bag.npz", b"\x89MCAP0\r\n" + bytes(64), "it is an MCAP bag"),
    ],
)
def test_a_file_that_is_not_an_npz_is_refused_as_such(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(BagError, match=f"is not an .npz file \\({reason}") as err:
        load_npz(tmp_path / name, allow_pickle=True)
    assert "pickle" not in str(err.value)
    proc = run_tool("from_npz", str(tmp_path / name))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "is not an .npz file" in proc.stderr and "pickle" not in proc.stderr
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(BagError, match="single .npy array"):
        load_npz(tmp_path / "one.npy")
