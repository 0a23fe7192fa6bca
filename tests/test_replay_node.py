"""The replay node in its own process, driven from a real node in the test process over zenoh: the
bag's bytes arrive on their recorded topics; pause, seek_step, seek_episode and set_rate work and
the status topic reports them; a late subscriber still gets the latched robot description and
timeline; it exits by itself at the end; bad inputs end in one line and a non-zero exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import rollout.runtime as rt
from rollout import topics as T
from rollout.bag import Bag, BagWriter
from rollout.codec import get_service, get_type, serialize
from rollout.replay import timeline, timeline_arrays
from rollout.runtime import LATCHED, LOSSLESS, Node
from recordings import record_humanoid
from ports import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def router_env() -> Iterator[dict[str, str]]:
    """A private router port and domain, so parallel test runs on this machine never meet."""
    env = {"ROLLOUT_ROUTER": f"tcp/127.0.0.1:{free_port()}", "ROS_DOMAIN_ID": str(100 + os.getpid() % 100)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield {**os.environ, **env}
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def node(router_env: dict[str, str]) -> Iterator[Node]:
    rt.init([], signals=False)  # this process hosts the router; the replay process joins it
    n = Node("replay_test")
    spinner = threading.Thread(target=rt.spin, daemon=True)
    spinner.start()
    yield n
    rt.shutdown()
    spinner.join(timeout=2)
    n.destroy_node()
    rt.close()


@pytest.fixture(scope="module")
def humanoid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_humanoid(tmp_path_factory.mktemp("bags") / "humanoid", num_envs=4, steps=40, seed=0, tf_envs=(0,))


def start_replay(bag: Path | str, env: dict[str, str], *params: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "rollout.nodes.replay", "--ros-args", "-p", f"bag:={bag}"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def subscribe_raw(node: Node, bag: Bag, got: dict[str, list[bytes]], qos: object) -> list[object]:
    subs = []
    for topic, info in bag.topics.items():
        got[topic] = []
        subs.append(
            node.create_subscription(info.type, topic, lambda d, t=topic: got[t].append(bytes(d)), qos, raw=True)
        )
    return subs


def test_replay_publishes_the_bag_and_obeys_its_services(
    node: Node, humanoid: Path, router_env: dict[str, str]
) -> None:
    with Bag(humanoid) as bag:
        expected = {t: [bytes(bag.raw(t, i).data) for i in range(bag.count(t))] for t in bag.topics}
        ends = [(int(m.step), e) for m in bag.iter_decoded(T.EPISODES) for e in m.env_ids.tolist()]
        robot_description = expected[T.ROBOT_DESCRIPTION][0]
        tl_expected = timeline_arrays(timeline(bag))
    got: dict[str, list[bytes]] = {}
    with Bag(humanoid) as bag:
        subs = subscribe_raw(node, bag, got, LOSSLESS)
    statuses: list[object] = []
    subs.append(node.create_subscription("rollout_msgs/msg/PlaybackStatus", T.PLAYBACK_STATUS, statuses.append, 10))
    services = {
        "pause": "rosbag2_interfaces/srv/Pause", "resume": "rosbag2_interfaces/srv/Resume",
        "toggle_paused": "rosbag2_interfaces/srv/TogglePaused", "is_paused": "rosbag2_interfaces/srv/IsPaused",
        "set_rate": "rosbag2_interfaces/srv/SetRate", "get_rate": "rosbag2_interfaces/srv/GetRate",
        "play_next": "rosbag2_interfaces/srv/PlayNext", "seek_step": "rollout_msgs/srv/SeekStep",
        "seek_episode": "rollout_msgs/srv/SeekEpisode",
    }  # fmt: skip
    clients = {verb: node.create_client(get_service(srv), f"/replay/{verb}") for verb, srv in services.items()}

    def call(verb: str, **fields: object) -> object:
        return clients[verb].call(get_service(services[verb]).Request(**fields), timeout_sec=5.0)

    proc = start_replay(humanoid, router_env, "rate:=0", "start_paused:=true", "exit_at_end:=false")
    try:
        wait_until(lambda: any(s.paused for s in statuses), what="the first status")
        assert clients["pause"].wait_for_service(timeout_sec=5.0)
        wait_until(lambda: len(got[T.ROBOT]) == 1 and len(got[T.ROBOT_DESCRIPTION]) == 1, what="the latched topics")
        assert got[T.STATE] == [] and statuses[-1].step == 0 and statuses[-1].first_step == 0
        assert statuses[-1].last_step == 39 and statuses[-1].rate == 0.0

        # play everything at rate 0: each topic's messages arrive once, in order, byte for byte
        call("resume")
        wait_until(lambda: statuses[-1].finished, what="the end")
        wait_until(lambda: all(len(got[t]) == len(expected[t]) for t in expected), what="every message")
        assert got == expected
        assert statuses[-1].progress == 1.0 and proc.poll() is None  # exit_at_end:=false keeps it up

        # pause + seek_step: the target step is published and the status says where we are
        call("pause")
        assert call("is_paused").paused
        for messages in got.values():
            messages.clear()
        res = call("seek_step", step=25)
        assert res.success and res.step == 25
        wait_until(lambda: got[T.STATE] and got[T.ROBOT_DESCRIPTION], what="step 25 and the latched topics")
        assert got[T.STATE] == [expected[T.STATE][25]]
        assert got[T.ROBOT_DESCRIPTION] == [robot_description]  # latched topics again after a seek
        wait_until(lambda: statuses[-1].step == 25 and statuses[-1].paused, what="status at step 25")
        assert not statuses[-1].finished
        assert not call("seek_step", step=1000).success

        # seek_episode: to the start of env e's next episode
        env = ends[0][1]
        nxt = min((s + 1 for s, e in ends if e == env and s + 1 > 25 and s + 1 < 40), default=None)
        res = call("seek_episode", env_id=env, direction=1)
        assert res.success == (nxt is not None) and (nxt is None or res.step == nxt)
        res = call("seek_episode", env_id=env, direction=-1)
        assert res.success and res.step < 25
        wait_until(lambda: got[T.STATE] and got[T.STATE][-1] == expected[T.STATE][res.step], what="the episode start")

        # set_rate: accepted in range and reported, refused outside it
        assert call("set_rate", rate=2.0).success
        assert call("get_rate").rate == 2.0
        wait_until(lambda: statuses[-1].rate == 2.0, what="status rate 2")
        assert not call("set_rate", rate=9.0).success and call("get_rate").rate == 2.0

        # play_next while paused: exactly the next message
        for messages in got.values():
            messages.clear()
        call("seek_step", step=10)
        wait_until(lambda: len(got[T.STATE]) == 1, what="step 10")
        assert call("play_next").success
        wait_until(lambda: len(got[T.STATE]) == 2, what="the next message")
        assert got[T.STATE][1] == expected[T.STATE][11]

        # toggle: resumes at rate 2 and plays to the end
        call("toggle_paused")
        assert not call("is_paused").paused
        wait_until(lambda: statuses[-1].finished and not statuses[-1].paused, what="the end at rate 2")
        wait_until(lambda: got[T.STATE][-1] == expected[T.STATE][-1], what="the last state")
        assert got[T.STATE] == expected[T.STATE][10:]

        # a late subscriber still gets the robot description and the timeline (latched)
        late: list[bytes] = []
        tl: list[object] = []
        subs.append(
            node.create_subscription(
                "std_msgs/msg/String", T.ROBOT_DESCRIPTION, lambda d: late.append(bytes(d)), LATCHED, raw=True
            )
        )
        subs.append(node.create_subscription("rollout_msgs/msg/Timeline", T.TIMELINE, tl.append, LATCHED))
        wait_until(lambda: late and tl, what="the latched robot description and timeline")
        assert late == [robot_description]
        a = timeline_arrays(tl[0])
        for k, v in tl_expected.items():
            assert np.array_equal(np.asarray(a[k]), np.asarray(v)), k
        assert a["num_envs"] > 0 and a["total_all"].shape == (len(a["steps"]), a["num_envs"])  # every env's total

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for s in subs:
            s.destroy()


def test_rate_zero_waits_for_a_subscriber_feeds_it_everything_and_exits_at_the_end(
    node: Node, humanoid: Path, router_env: dict[str, str]
) -> None:
    statuses: list[object] = []
    subs = [node.create_subscription("rollout_msgs/msg/PlaybackStatus", T.PLAYBACK_STATUS, statuses.append, 10)]
    proc = start_replay(humanoid, router_env, "rate:=0", "wait_for_subscribers:=1")
    try:
        wait_until(lambda: statuses, what="the first status")
        time.sleep(0.3)
        assert statuses[-1].paused and not statuses[-1].finished and proc.poll() is None  # holding
        # subscribe only now (the latched topics from their publishers' caches): nothing is missed
        with Bag(humanoid) as bag:
            expected = {t: [bytes(bag.raw(t, i).data) for i in range(bag.count(t))] for t in bag.topics}
            got: dict[str, list[bytes]] = {t: [] for t in bag.topics}
            for topic, info in bag.topics.items():
                qos = LATCHED if info.latched else LOSSLESS
                subs.append(node.create_subscription(info.type, topic, got[topic].append, qos, raw=True))
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "played to the end" in err + out
        wait_until(lambda: got == expected, timeout=5, what="every message")
        assert statuses[-1].finished and statuses[-1].progress == 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for s in subs:
            s.destroy()


def test_bad_bags_end_in_one_line_and_a_nonzero_exit(tmp_path: Path, router_env: dict[str, str]) -> None:
    (tmp_path / "garbage.mcap").write_bytes(b"not a bag at all" * 64)
    with BagWriter(tmp_path / "chatter") as w:
        w.add_topic("/chatter", "std_msgs/msg/String")
        w.write("/chatter", serialize(get_type("std_msgs/msg/String")(data="hi")), 1_750_000_000_000_000_000)
    cases = {
        "missing": (tmp_path / "nope", "does not exist"),
        "corrupt": (tmp_path / "garbage.mcap", "not an MCAP file"),
        "not a rollout": (tmp_path / "chatter", "is not a rollout recording: it has no /rollout/state messages"),
        "no bag": ("", "no bag given"),
    }
    procs = {name: start_replay(path, router_env) for name, (path, _) in cases.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=20)
        assert proc.returncode != 0, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("replay: error: ") and cases[name][1] in lines[0], (name, err)
        assert out == ""


def test_bag_latest_is_the_newest_recording_not_an_npz_or_an_empty_bag(tmp_path: Path) -> None:
    from rollout.export import bag_to_npz
    from rollout.nodes.replay import latest_recording

    root = tmp_path / "rollouts"
    old = record_humanoid(root / "rollout_20260101_000000_000", num_envs=1, steps=3)
    good = record_humanoid(root / "rollout_20260102_000000_000", num_envs=1, steps=3)
    bag_to_npz(good, root / "rollout_20260102_000000_000.npz")  # newer, but not a bag
    with BagWriter(root / "rollout_20260103_000000_000") as empty:  # newer, but holds no states
        empty.add_topic(T.ROBOT, "rollout_msgs/msg/RobotDescription", latched=True)
    assert latest_recording(str(root)) == good != old
