"""The runtime's behaviour, the same test ids on both backends: zenoh, and rclpy over Fast DDS.

Nodes run as separate processes (tests/graph_nodes.py) on the backend under test; the rclpy
cases skip with the reason when rclpy does not import (a dev machine without ROS 2); `.ci/run`
installs ROS 2 Jazzy and runs them. DDS traffic stays on this host, in a domain of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "ros2"))
from graph_nodes import digest, payload  # noqa: E402
from needs import missing  # noqa: E402

from rollout.runtime.qos import LATCHED, LOSSLESS  # noqa: E402

DOMAIN = str(100 + os.getpid() % 100)  # this session's DDS domain: parallel sessions do not meet


def rclpy_missing() -> str | None:
    try:
        import rclpy  # noqa: F401
    except ImportError as e:
        return f"rclpy does not import here ({e}); .ci/run installs ROS 2 Jazzy and runs these"
    return None


@pytest.fixture(params=["zenoh", "rclpy"])
def rt(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The backend's module functions (init, spin, Node...); node processes started meanwhile use it too."""
    if request.param == "rclpy":
        if (why := rclpy_missing()) is not None:
            missing(why)
        monkeypatch.setenv("ROS_DOMAIN_ID", DOMAIN)
        monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        from rollout.runtime import ros as module
    else:
        from rollout.runtime import zenoh_backend as module  # type: ignore[no-redef]
    monkeypatch.setenv("ROLLOUT_BACKEND", request.param)
    yield module
    module.close()


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "graph_nodes.py"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_line(proc: subprocess.Popen[str], text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if text in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"process ended ({proc.returncode}): {proc.stderr.read()}")  # type: ignore[union-attr]
    raise AssertionError(f"no {text!r} within {timeout} s")


def stop(*procs: subprocess.Popen[str]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def transfer(rt: ModuleType, tmp_path: Path, count: int, size: int, *, delay: float = 0.0, linger: bool = False) -> list[list]:
    """`count` messages from a publisher process to a subscriber process; what the subscriber got.
    linger: the publisher stays up until the subscriber has all (else it exits once it has published)."""
    rt.init([], signals=False)  # zenoh: this process hosts the router for both ends, as `rollout launch` does
    out = tmp_path / "got.json"
    sub = start("sub", "--topic", "/test/data", "--count", str(count), "--out", str(out), "--delay", str(delay))
    wait_line(sub, "subscribed")
    pub = start("pub", "--topic", "/test/data", "--count", str(count), "--size", str(size), "--wait-subs", "1",
                *(["--linger"] if linger else []))
    try:
        if not linger:
            assert pub.wait(180) == 0, pub.stderr.read()  # type: ignore[union-attr]
        assert sub.wait(180) == 0, sub.stderr.read()  # type: ignore[union-attr]
    finally:
        stop(sub, pub)
    return json.loads(out.read_text())


def test_5mb_messages_arrive_complete_and_in_order(rt: ModuleType, tmp_path: Path) -> None:
    got = transfer(rt, tmp_path, count=20, size=5_000_000)
    assert [g[0] for g in got] == list(range(20))
    assert [g[1] for g in got] == list(range(1, 21))  # publisher sequence numbers, none skipped
    assert [g[2] for g in got] == [digest(payload(i, 5_000_000)) for i in range(20)]
    for _, _, _, sent, received, handled in got:  # (msg, info): when it was sent and when it came
        assert 0 < sent <= received <= handled and handled - sent < 60e9


def test_10000_small_messages_none_lost(rt: ModuleType, tmp_path: Path) -> None:
    got = transfer(rt, tmp_path, count=10_000, size=64)
    assert [g[0] for g in got] == list(range(10_000))
    assert [g[1] for g in got] == list(range(1, 10_001))
    assert {g[2] for g in got[:50]} == {digest(payload(i, 64)) for i in range(50)}


def test_keep_all_publisher_waits_for_a_slow_subscriber(rt: ModuleType, tmp_path: Path) -> None:
    """Reliable keep-all: a subscriber that takes 2 ms a message still gets every one of 1,000,
    though the publisher exits as soon as it has published them, hundreds ahead (zenoh: the
    closing session's delivery barrier; rclpy: it waits for acknowledgements)."""
    got = transfer(rt, tmp_path, count=1000, size=20_000, delay=0.002)
    assert [g[0] for g in got] == list(range(1000))


def test_pub_sub_both_ways_between_processes(rt: ModuleType) -> None:
    """This process publishes to an echo node and gets each message back on another topic."""
    echo = start("echo", "--topic", "/test/ping", "--to", "/test/pong")
    try:
        wait_line(echo, "echoing")
        rt.init([], signals=False)
        node = rt.Node("test_pinger")
        back: list[tuple[str, int]] = []
        node.create_subscription(
            "sensor_msgs/msg/CompressedImage", "/test/pong", lambda m, info: back.append((m.format, info["publication_sequence_number"])),
            LOSSLESS,
        )
        pub = node.create_publisher("sensor_msgs/msg/CompressedImage", "/test/ping", 10)
        assert pub.wait_for_subscribers(1, 20)
        deadline = time.monotonic() + 20
        while node.count_publishers("/test/pong") < 1 and time.monotonic() < deadline:
            rt.spin_once(timeout_sec=0.05)
        time.sleep(0.5)  # the echo's subscription to us and ours to it are both matched
        for i in range(100):
            msg = pub.msg_type(format=f"m{i}")
            pub.publish(msg)
        deadline = time.monotonic() + 30
        while len(back) < 100 and time.monotonic() < deadline:
            rt.spin_once(timeout_sec=0.05)
        assert [f for f, _ in back] == [f"m{i}" for i in range(100)]
        assert [s for _, s in back] == list(range(1, 101))
        node.destroy_node()
    finally:
        stop(echo)


def test_late_subscriber_gets_the_latched_message(rt: ModuleType, tmp_path: Path) -> None:
    pub = start("pub", "--topic", "/test/latched", "--qos", "latched", "--size", "1000", "--linger")
    try:
        wait_line(pub, "published")
        time.sleep(0.5)
        out = tmp_path / "late.json"
        sub = subprocess.run(
            [sys.executable, str(HERE / "graph_nodes.py"), "sub", "--topic", "/test/latched", "--qos", "latched",
             "--out", str(out)],
            timeout=60, capture_output=True, text=True,
        )
        assert sub.returncode == 0, sub.stderr
        assert json.loads(out.read_text())[0][2] == digest(payload(0, 1000))
    finally:
        stop(pub)


def test_a_slow_keep_last_subscriber_drops_oldest_not_newest(rt: ModuleType) -> None:
    rt.init([], signals=False)
    node = rt.Node("test_depth")
    pub = node.create_publisher("std_msgs/msg/String", "/test/depth", 10)
    got: list[str] = []
    node.create_subscription("std_msgs/msg/String", "/test/depth", lambda m: got.append(m.data), 3)
    assert pub.wait_for_subscribers(1, 10)
    time.sleep(0.3)
    for i in range(50):  # nobody spins meanwhile: the queue keeps only the newest 3
        pub.publish(pub.msg_type(data=str(i)))
    time.sleep(1.0)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        rt.spin_once(timeout_sec=0.05)
    assert got == ["47", "48", "49"]
    node.destroy_node()


def spin_for(rt: ModuleType, seconds: float, until=lambda: False) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        rt.spin_once(timeout_sec=0.05)


def test_a_destroyed_subscription_gets_nothing_more_and_leaves_the_graph(rt: ModuleType) -> None:
    rt.init([], signals=False)
    node = rt.Node("test_destroy")
    pub = node.create_publisher("std_msgs/msg/String", "/test/destroy", 10)
    got: list[str] = []
    sub = node.create_subscription("std_msgs/msg/String", "/test/destroy", lambda m: got.append(m.data), 10)
    client = node.create_client("std_srvs/srv/SetBool", "/test/destroy_srv")
    assert pub.wait_for_subscribers(1, 10)
    pub.publish(pub.msg_type(data="before"))
    spin_for(rt, 5, lambda: got == ["before"])
    assert node.destroy_subscription(sub) and node.destroy_client(client)
    assert not node.destroy_subscription(sub), "a second destroy says it was not there"
    spin_for(rt, 10, lambda: pub.get_subscription_count() == 0)
    assert pub.get_subscription_count() == 0
    pub.publish(pub.msg_type(data="after"))
    spin_for(rt, 0.5)
    assert got == ["before"]
    node.destroy_node()


def test_service_call_returns_across_processes(rt: ModuleType) -> None:
    server = start("server", "--name", "/test/set")
    try:
        wait_line(server, "serving")
        rt.init([], signals=False)
        node = rt.Node("test_client")
        client = node.create_client("std_srvs/srv/SetBool", "/test/set")
        assert client.wait_for_service(20)
        response = client.call(client.srv_type.Request(data=True), timeout_sec=20)
        assert (response.success, response.message) == (True, "ok True")
        node.destroy_node()
    finally:
        stop(server)


def test_graph_sees_publishers_types_and_qos(rt: ModuleType) -> None:
    rt.init([], signals=False)
    node = rt.Node("test_graph")
    node.create_publisher("std_msgs/msg/String", "/test/graph_plain", 10)
    node.create_publisher("std_msgs/msg/String", "/test/graph_latched", LATCHED)
    deadline = time.monotonic() + 10
    seen: dict = {}
    while len(seen) < 2 and time.monotonic() < deadline:
        rt.spin_once(timeout_sec=0.05)
        seen = {e.topic: e for e in node.publishers() if e.topic.startswith("/test/graph_")}
    assert set(seen) == {"/test/graph_plain", "/test/graph_latched"}
    assert seen["/test/graph_plain"].type_name == "std_msgs/msg/String"
    assert seen["/test/graph_latched"].qos.latched and not seen["/test/graph_plain"].qos.latched
    assert seen["/test/graph_plain"].node.endswith("/test_graph")
    assert seen["/test/graph_plain"].type_hash.startswith("RIHS01_")
    node.destroy_node()


def params_run(*ros_args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HERE / "graph_nodes.py"), "params", "--ros-args", *ros_args],
        capture_output=True, text=True, timeout=60,
    )


def test_parameters_from_the_command_line_have_their_types(rt: ModuleType) -> None:
    p = params_run("-p", "count:=4", "-p", "rate:=5", "-p", "label:=7", "-p", "flag:=true", "-p", "ids:=[1,2]")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {
        "count": [4, "int"], "rate": [5.0, "float"], "label": ["7", "str"], "flag": [True, "bool"], "ids": [[1, 2], "tuple"]
    }


def test_parameters_from_a_launch_params_file_have_their_types(rt: ModuleType, tmp_path: Path) -> None:
    """The YAML file launch_ros writes for `Node(parameters=[{...}])`, addressed to the node."""
    f = tmp_path / "launch_params.yaml"
    f.write_text("/test_params:\n  ros__parameters:\n    count: 4\n    flag: true\n    label: '16'\n    rate: 2.5\n")
    p = params_run("--params-file", str(f))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["count"] == [4, "int"] and json.loads(p.stdout)["label"] == ["16", "str"]
    assert json.loads(p.stdout)["rate"] == [2.5, "float"] and json.loads(p.stdout)["flag"] == [True, "bool"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["-p", "count:=abc"], "params_node: error: parameter 'count': 'abc' is not an integer"),
        (["-p", "flag:=maybe"], "params_node: error: parameter 'flag': 'maybe' is not true or false"),
        (["-p", "colour:=red"], "params_node: error: unknown parameter 'colour'; this node takes: count, flag, ids, label, rate"),
    ],
)
def test_a_bad_parameter_is_one_line(rt: ModuleType, args: list[str], message: str) -> None:
    p = params_run(*args)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [message]


def test_ctrl_c_ends_a_node_cleanly(rt: ModuleType, tmp_path: Path) -> None:
    """SIGINT stops spinning, the node's cleanup runs (its file is written) and it exits 0."""
    out = tmp_path / "got.json"
    sub = start("sub", "--topic", "/test/none", "--count", "5", "--out", str(out))
    try:
        wait_line(sub, "subscribed")
        time.sleep(0.3)
        t0 = time.monotonic()
        sub.send_signal(signal.SIGINT)
        assert sub.wait(10) == 0, sub.stderr.read()  # type: ignore[union-attr]
        assert time.monotonic() - t0 < 5
        assert json.loads(out.read_text()) == []
        assert "Traceback" not in sub.stderr.read()  # type: ignore[union-attr]
    finally:
        stop(sub)
