"""Live recording: record.launch.py over real processes, MuJoCo and zenoh, into a real bag."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rollout.bag import Bag
from rollout.policy import policy_for
from rollout.sim import make_env, run_steps

ROLLOUT = [sys.executable, "-m", "rollout.cli"]
PER_STEP = ["/rollout/state", "/rollout/action", "/rollout/reward_terms", "/rollout/base_poses", "/tf"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "run"
    p = subprocess.run(
        [*ROLLOUT, "launch", "record.launch.py", "num_envs:=16", "steps:=200", "seed:=3", "policy:=random", f"out:={out}"],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"bag: {out}" in p.stdout and "no gaps" in p.stdout
    return out


def test_every_step_of_every_topic_is_recorded(recorded: Path) -> None:
    with Bag(recorded) as bag:
        assert bag.count("/rollout/robot") == 1 and bag.count("/robot_description") == 1
        for topic in PER_STEP:
            assert bag.count(topic) == 200, topic
            assert [m.sequence for m in bag.messages([topic])] == list(range(1, 201)), topic
        for topic in ("/rollout/state", "/rollout/action", "/rollout/reward_terms"):
            assert bag.steps(topic).tolist() == list(range(200))
        log_times = np.array([m.log_time for m in bag.messages(["/rollout/state"])])
        assert np.all(np.diff(log_times) > 0) and log_times[0] > 1.5e18  # wall-clock stamps


def test_recorded_rewards_equal_the_env_stepped_directly(recorded: Path) -> None:
    env = make_env("mujoco:Humanoid-v5", num_envs=16, seed=3)
    info = env.info
    policy = policy_for(info, "random", seed=3)
    direct = list(run_steps(env, policy, seed=3, steps=200))
    with Bag(recorded) as bag:
        terms = list(bag.iter_decoded("/rollout/reward_terms"))
        states = list(bag.iter_decoded("/rollout/state"))
        robot = bag.decode("/rollout/robot", 0)
    assert list(robot.reward_term_names) == list(info.reward_term_names)
    assert [t.name for t in terms[0].terms] == list(info.reward_term_names)
    for rec, msg in zip(direct, terms):
        np.testing.assert_array_equal(np.stack([t.value for t in msg.terms]), rec.terms)
        np.testing.assert_array_equal(msg.total, rec.reward)
    for rec, msg in zip(direct, states):
        np.testing.assert_array_equal(msg.obs.reshape(16, -1), rec.obs)
        np.testing.assert_array_equal(msg.base_pos.reshape(16, 3), rec.poses.base_pos)
    # x, y, z, w: the humanoid starts upright, so w (last) is near 1 and x, y, z near 0
    q0 = states[0].base_quat.reshape(16, 4)
    assert np.all(q0[:, 3] > 0.99) and np.all(np.abs(q0[:, :3]) < 0.1)
    assert np.allclose(np.linalg.norm(states[-1].base_quat.reshape(16, 4), axis=1), 1, atol=1e-5)


def test_an_independent_reader_decodes_the_same_values(recorded: Path) -> None:
    from rosbags.highlevel import AnyReader

    with Bag(recorded) as ours, AnyReader([recorded]) as theirs:
        conns = [c for c in theirs.connections if c.topic in ("/rollout/state", "/rollout/reward_terms")]
        seen = 0
        for conn, _, raw in theirs.messages(connections=conns):
            msg = theirs.deserialize(raw, conn.msgtype)
            mine = ours.decode(conn.topic, int(msg.step))
            if conn.topic == "/rollout/state":
                np.testing.assert_array_equal(msg.obs, mine.obs)
                np.testing.assert_array_equal(msg.body_poses, mine.body_poses)
            else:
                np.testing.assert_array_equal(msg.terms[0].value, mine.terms[0].value)
            seen += 1
        assert seen == 400


def test_a_killed_recorder_leaves_complete_chunks_recoverable(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    recorder = subprocess.Popen([*ROLLOUT, "run", "recorder", "--ros-args", "-p", f"out:={out}", "-p", "flush_interval:=0.2"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sim = subprocess.Popen([*ROLLOUT, "run", "sim", "--ros-args", "-p", "num_envs:=4", "-p", "realtime:=true",
                            "-p", "wait_for_subscribers:=1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert recorder.stdout is not None
        for line in recorder.stdout:  # the sim is publishing (its start takes seconds on a busy machine)
            if "recording /rollout/state" in line:
                break
        time.sleep(3)
        recorder.send_signal(signal.SIGKILL)
        recorder.wait(10)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(10)
    info = subprocess.run([*ROLLOUT, "bag", "info", str(out)], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    fixed = subprocess.run([*ROLLOUT, "bag", "repair", str(out)], capture_output=True, text=True, timeout=60)
    assert fixed.returncode == 0, fixed.stderr
    path = Path(re.search(r"repaired bag: (.*)", fixed.stdout).group(1))
    with Bag(path) as bag:
        steps = bag.steps("/rollout/state")
        assert len(steps) > 20  # ~3 s at 67 Hz, flushed every 0.2 s: all but the last fraction of a second
        assert steps.tolist() == list(range(len(steps)))
        assert bag.count("/rollout/robot") == 1
        last = bag.decode("/rollout/state", len(steps) - 1)
        assert last.obs.size == 4 * 348


def bad_launch(tmp_path: Path, *args: str) -> str:
    p = subprocess.run([*ROLLOUT, "launch", "record.launch.py", "steps:=5", *args], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0
    assert "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr
    errors = [line for line in p.stdout.splitlines() if "error:" in line and not line.startswith("[launch] failed:")]
    assert len(errors) == 1, p.stdout  # said once by the node, then repeated as the launch's last line
    assert "done:" not in p.stdout  # failed before stepping
    return errors[0]


def test_bad_recording_inputs_fail_before_stepping(tmp_path: Path) -> None:
    import torch

    from rollout.policy import export_policy

    assert "does not exist" in bad_launch(tmp_path, "policy:=/no/such/policy.pt2", f"out:={tmp_path / 'a'}")
    wrong = export_policy(torch.nn.Linear(10, 17), tmp_path / "wrong.pt2", obs_dim=10)
    assert "348" in bad_launch(tmp_path, f"policy:={wrong}", f"out:={tmp_path / 'b'}")
    assert "nosuch_module" in bad_launch(tmp_path, "env:=nosuch_module:make", f"out:={tmp_path / 'c'}")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert "cannot write the bag" in bad_launch(tmp_path, f"out:={blocker / 'bag'}")
