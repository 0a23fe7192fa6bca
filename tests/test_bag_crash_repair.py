"""A recorder killed with SIGKILL leaves every complete chunk readable; `repair` makes the bag
whole for every tool, and `info` says what happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from rosbags.highlevel import AnyReader

from rollout.bag import Bag, info, repair
from rollout.errors import BagError

ROOT = Path(__file__).resolve().parents[1]

RECORDER = textwrap.dedent(
    """
    import sys, numpy as np
    from rollout.bag import BagWriter
    from rollout.codec import get_type, serialize
    State = get_type("rollout_msgs/msg/State")
    Robot = get_type("rollout_msgs/msg/RobotDescription")
    bag = BagWriter(sys.argv[1], chunk_size=4096, compression=sys.argv[2])
    bag.add_topic("/rollout/robot", "rollout_msgs/msg/RobotDescription", latched=True)
    bag.add_topic("/rollout/state", "rollout_msgs/msg/State")
    bag.write("/rollout/robot", serialize(Robot(num_envs=4, model="<mujoco/>")), 10**18 - 1)
    step = 0
    while True:
        obs = np.full((4, 50), step, np.float32)
        bag.write("/rollout/state", serialize(State(step=step, num_envs=4, obs_dim=50, obs=obs)), 10**18 + step)
        step += 1
        if step == 300:
            bag.flush()
            print("ready", flush=True)
    """
)


def record_and_kill(path: Path, compression: str = "none") -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", RECORDER, str(path), compression], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        # let it write more chunks, then kill it mid-stream
        target = path / f"{path.name}_0.mcap" if path.suffix != ".mcap" else path
        size = target.stat().st_size
        deadline = time.monotonic() + 20
        while target.stat().st_size < size + 200_000:
            assert proc.poll() is None and time.monotonic() < deadline, "the recorder stopped writing"
            time.sleep(0.001)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def steps_in(bag: Bag) -> np.ndarray:
    return bag.read_arrays("/rollout/state", ["step"])["step"]


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_killed_recorder_keeps_complete_chunks_and_repair_restores_the_file(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "killed.mcap"
    record_and_kill(path, compression)

    with pytest.raises(BagError, match=r"truncated.*rollout bag repair") as err:
        Bag(path)
    assert "\n" not in str(err.value)
    with pytest.raises(Exception):  # the mcap library cannot index it either
        with open(path, "rb") as f:
            make_reader(f).get_summary().statistics  # type: ignore[union-attr]

    with Bag(path, recover=True) as bag:
        steps = steps_in(bag)
    assert steps.size >= 300
    assert np.array_equal(steps, np.arange(steps.size))  # complete chunks, in order, nothing made up

    text = info(path)
    assert "truncated" in text and "rollout bag repair" in text
    assert f"Count: {steps.size}" in text

    fixed = repair(path).path
    assert fixed == tmp_path / "killed_repaired.mcap" and path.exists()  # original kept
    with Bag(fixed) as bag:
        assert np.array_equal(steps_in(bag), steps)
        assert bag.topics["/rollout/robot"].latched
        assert bag.decode("/rollout/robot", 0).model == "<mujoco/>"
        obs = bag.read_arrays("/rollout/state", ["obs"])["obs"]
        assert np.array_equal(obs[:, 0], steps.astype(np.float32))
    with open(fixed, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None and summary.statistics.message_count == steps.size + 1
    with AnyReader([fixed]) as reader:
        assert sum(1 for _ in reader.messages()) == steps.size + 1
    assert "Warning" not in info(fixed)


def test_killed_folder_bag_repairs_in_place(tmp_path: Path) -> None:
    path = tmp_path / "run"
    record_and_kill(path)
    assert not (path / "metadata.yaml").exists()  # written only on close
    with Bag(path, recover=True) as bag:
        steps = steps_in(bag)
    assert repair(path, in_place=True).path == path
    assert (path / "metadata.yaml").is_file() and (path / "run_0.mcap").is_file()
    assert not (tmp_path / "run.repairing").exists()
    with AnyReader([path]) as reader:  # a rosbag2 folder again
        assert sum(1 for c, _, _ in reader.messages() if c.topic == "/rollout/state") == steps.size
    with Bag(path) as bag:
        assert np.array_equal(steps_in(bag), steps)


def test_repair_of_a_healthy_bag_changes_nothing(tmp_path: Path) -> None:
    from rollout.export.synthetic import write_synthetic_rollout

    write_synthetic_rollout(tmp_path / "ok", steps=15, compression="lz4", chunk_size=2048)
    out = repair(tmp_path / "ok").path
    with Bag(tmp_path / "ok") as a, Bag(out) as b:
        assert {k: (v.type, v.count, v.offered_qos_profiles) for k, v in a.topics.items()} == {
            k: (v.type, v.count, v.offered_qos_profiles) for k, v in b.topics.items()
        }
        for topic in a.topics:
            for i in range(a.count(topic)):
                x, y = a.raw(topic, i), b.raw(topic, i)
                assert (bytes(x.data), x.log_time, x.publish_time, x.sequence) == (bytes(y.data), y.log_time, y.publish_time, y.sequence)
