"""The graph under ROS 2 Jazzy (rclpy + Fast DDS), run from a colcon install as a ROS 2 user runs it.

`.ci/run` builds the workspace (`.ci/ros2-build`: this checkout as src/rollout, rollout_msgs,
tf2_msgs, rosbag2_interfaces) and points `ROLLOUT_ROS2_WS` at it; without it these skip. The
launch files' graphs are started node by node as launch_ros starts them (tests/ros2/launch_like.py);
bags are checked with rosbags, an independent reader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "ros2"))
import launch_like  # noqa: E402
from needs import missing  # noqa: E402
from ports import free_port  # noqa: E402

WS = Path(os.environ.get("ROLLOUT_ROS2_WS", "/nonexistent"))


@pytest.fixture(scope="module", autouse=True)
def ros2_workspace() -> None:
    if not (WS / "install" / "setup.bash").is_file():
        missing("no ROS 2 workspace: set ROLLOUT_ROS2_WS to one built by .ci/ros2-build (.ci/run does)")
STEPS = 40
STEPPED = ["/rollout/state", "/rollout/action", "/rollout/reward_terms", "/rollout/base_poses", "/tf"]


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return launch_like.sourced_env(
        WS, ROS_DOMAIN_ID=str(150 + os.getpid() % 80), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROLLOUT_BACKEND="", PYTHONUNBUFFERED="1",
    )


def run_graph(env: dict[str, str], tmp: Path, file: str, timeout: float = 300, **given: str) -> launch_like.Graph:
    graph = launch_like.start(WS, ROOT / "launch" / file, env, tmp, **given)
    codes = graph.wait(timeout)
    logs = "\n".join(f"--- {n}\n{graph.output(n)}" for n in graph.logs)
    assert all(c == 0 for c in codes.values()), f"{codes}\n{logs}"
    return graph


def assert_every_step_recorded(bag: Path, steps: int, num_envs: int) -> None:
    """rosbags reads the bag: every stepped topic has every step, sequence numbers 1..N, values as we decode."""
    from rosbags.highlevel import AnyReader

    from mcap.reader import make_reader
    from rollout.bag import Bag, bag_files

    with Bag(bag) as ours, AnyReader([bag]) as reader:
        conns = {c.topic: c for c in reader.connections}
        assert set(STEPPED) | {"/rollout/robot", "/robot_description"} <= set(conns)
        for topic in STEPPED:
            msgs = list(reader.messages([conns[topic]]))
            assert len(msgs) == steps, topic
            if topic != "/tf":
                decoded = [reader.deserialize(d, conns[topic].msgtype) for _, _, d in msgs]
                for i, m in enumerate(decoded[:: max(1, steps // 5)]):
                    mine = ours.decode(topic, i * max(1, steps // 5))
                    if topic == "/rollout/state":
                        assert int(m.step) == int(mine.step) and np.array_equal(np.asarray(m.obs), np.asarray(mine.obs))
        states = [reader.deserialize(d, conns["/rollout/state"].msgtype) for _, _, d in reader.messages([conns["/rollout/state"]])]
        assert [int(s.step) for s in states] == list(range(steps))
        assert np.asarray(states[0].obs).size % num_envs == 0
    sequences: dict[int, list[int]] = {}
    for f in bag_files(bag):
        with open(f, "rb") as fh:
            for _, channel, message in make_reader(fh).iter_messages():
                sequences.setdefault(channel.id, []).append(message.sequence)
    for seqs in sequences.values():  # the publisher's count of each message, none missing
        assert seqs == list(range(1, len(seqs) + 1))


def test_record_graph_records_every_step(env, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    graph = run_graph(env, tmp_path, "record.launch.py", num_envs="3", steps=str(STEPS), out=str(bag), seed="1")
    out = graph.output("recorder")
    assert "no gaps" in out and f"/rollout/state: {STEPS} messages" in out, out
    assert "[recorder]" in out and "rollout.runtime.ros" not in out  # rclpy's log lines, no traceback
    assert_every_step_recorded(bag, STEPS, 3)


def test_record_graph_with_viewer_and_video(env, tmp_path: Path) -> None:
    bag, video, port = tmp_path / "bag", tmp_path / "live.mp4", free_port()
    graph = run_graph(env, tmp_path, "record.launch.py", num_envs="2", steps=str(STEPS), out=str(bag),
                      view="true", realtime="false", port=str(port), video=str(video))
    assert f"open http://127.0.0.1:{port}" in graph.output("viser_bridge")
    assert_every_step_recorded(bag, STEPS, 2)
    assert imageio_ffmpeg.count_frames_and_secs(str(video))[0] == STEPS, graph.output("video_encoder")


@pytest.fixture(scope="module")
def recorded(env, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ros2_bag")
    run_graph(env, tmp, "record.launch.py", num_envs="2", steps=str(STEPS), out=str(tmp / "bag"))
    return tmp / "bag"


def test_replay_graph_writes_an_mp4(env, recorded: Path, tmp_path: Path) -> None:
    video = tmp_path / "replay.mp4"
    run_graph(env, tmp_path, "replay.launch.py", bag=str(recorded), video=str(video), width="320", height="240")
    assert imageio_ffmpeg.count_frames_and_secs(str(video))[0] == STEPS


def test_replay_graph_plays_shards_as_one_rollout(env, tmp_path: Path) -> None:
    from shard_bags import record_shards

    rank0 = record_shards(tmp_path / "rank0", [("rank0", 2)], steps=12)
    rank1 = record_shards(tmp_path / "rank1", [("rank1", 1)], steps=12, skip={"rank1": [11]})
    video = tmp_path / "shards.mp4"
    graph = run_graph(env, tmp_path, "replay.launch.py", bag=f"{rank0},{rank1}", video=str(video), envs="0-2",
                      width="160", height="120")  # fmt: skip
    assert "2 shards as one rollout of 3 envs" in graph.output("replay"), graph.output("replay")
    assert imageio_ffmpeg.count_frames_and_secs(str(video))[0] == 11


def test_replay_graph_serves_the_player_services_to_the_viewer(env, recorded: Path, tmp_path: Path) -> None:
    port = free_port()
    graph = launch_like.start(WS, ROOT / "launch" / "replay.launch.py", env, tmp_path, bag=str(recorded),
                              start_paused="true", port=str(port))
    try:
        check = subprocess.run([sys.executable, str(HERE / "ros2" / "player_check.py")], env=dict(env, ROLLOUT_BACKEND="rclpy"),
                               capture_output=True, text=True, timeout=180)
        assert check.returncode == 0, check.stderr
        seen = json.loads(check.stdout.strip().splitlines()[-1])
        assert seen["viewer_seeked"] and seen["first_steps"][0] == 0  # the viewer asked the paused player for step 0
        assert seen["paused"] and seen["played_after_resume"] and not seen["paused_after_resume"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=10) as r:
            assert r.status == 200
    finally:
        graph.stop()
    assert "Traceback" not in graph.output("viser_bridge") + graph.output("replay")


def test_installed_to_npz_converts_the_bag(env, recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.npz"
    p = subprocess.run([str(launch_like.executable(WS, "to_npz")), str(recorded), "-o", str(out)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    with np.load(out) as z:
        assert z["obs"].shape[:2] == (STEPS, 2) and z["act"].shape[:2] == (STEPS, 2)


def one_line(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_a_wrong_parameter_type_is_one_line(env) -> None:
    p = subprocess.run([str(launch_like.executable(WS, "sim")), "--ros-args", "-p", "num_envs:=many"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert one_line(p) == "sim: error: parameter 'num_envs': 'many' is not an integer"


def test_a_missing_rollout_msgs_build_is_one_line(env, tmp_path: Path) -> None:
    """rollout's own install sourced, rollout_msgs not built: the node says what to build."""
    bare = {k: os.pathsep.join(p for p in v.split(os.pathsep) if "install/rollout_msgs" not in p) for k, v in env.items()}
    p = subprocess.run([str(launch_like.executable(WS, "sim")), "--ros-args", "-p", "env:=synthetic"],
                       env=bare, capture_output=True, text=True, timeout=60)
    line = one_line(p)
    assert line.startswith("sim: error: rollout_msgs/msg/") and "colcon build the package rollout_msgs" in line


def test_an_unknown_node_is_one_line(env) -> None:
    p = subprocess.run([str(launch_like.executable(WS, "rollout")), "run", "simulator"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert one_line(p).startswith("rollout: error: no node 'simulator'; available: ")
