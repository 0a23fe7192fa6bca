"""Messages between separate processes over real zenoh sessions: complete, in order, lossless."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zenoh

from rollout import runtime
from rollout.codec import serialize, type_hash

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from graph_nodes import digest, payload  # noqa: E402


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "graph_nodes.py"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_line(proc: subprocess.Popen[str], text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if text in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"process ended ({proc.returncode}): {proc.stderr.read()}")  # type: ignore[union-attr]
    raise AssertionError(f"no {text!r} within {timeout} s")


def transfer(tmp_path: Path, count: int, size: int) -> list[list]:
    out = tmp_path / "got.json"
    sub = start("sub", "--topic", "/test/data", "--count", str(count), "--out", str(out))
    wait_line(sub, "subscribed")
    pub = start("pub", "--topic", "/test/data", "--count", str(count), "--size", str(size), "--wait-subs", "1")
    try:
        assert sub.wait(120) == 0, sub.stderr.read()  # type: ignore[union-attr]
        assert pub.wait(30) == 0, pub.stderr.read()  # type: ignore[union-attr]
    finally:
        for p in (sub, pub):
            p.kill()
            p.wait()
    return json.loads(out.read_text())


def test_5mb_messages_arrive_complete_and_in_order(tmp_path: Path) -> None:
    got = transfer(tmp_path, count=20, size=5_000_000)
    assert [g[0] for g in got] == list(range(20))
    assert [g[1] for g in got] == list(range(1, 21))  # publisher sequence numbers, none skipped
    assert [g[2] for g in got] == [digest(payload(i, 5_000_000)) for i in range(20)]


def test_10000_small_messages_none_lost(tmp_path: Path) -> None:
    got = transfer(tmp_path, count=10_000, size=64)
    assert [g[0] for g in got] == list(range(10_000))
    assert {g[2] for g in got[:50]} == {digest(payload(i, 64)) for i in range(50)}


def test_late_subscriber_gets_the_latched_message(tmp_path: Path) -> None:
    pub = start("pub", "--topic", "/test/latched", "--qos", "latched", "--size", "1000", "--linger")
    try:
        wait_line(pub, "published")
        time.sleep(0.3)
        out = tmp_path / "late.json"
        sub = subprocess.run(
            [sys.executable, str(HERE / "graph_nodes.py"), "sub", "--topic", "/test/latched", "--qos", "latched",
             "--out", str(out)],
            timeout=30, capture_output=True, text=True,
        )
        assert sub.returncode == 0, sub.stderr
        assert json.loads(out.read_text())[0][2] == digest(payload(0, 1000))
    finally:
        pub.kill()
        pub.wait()


def test_service_call_returns_across_processes() -> None:
    server = start("server", "--name", "/test/set")
    try:
        wait_line(server, "serving")
        runtime.init([], signals=False)
        node = runtime.Node("test_client")
        client = node.create_client("std_srvs/srv/SetBool", "/test/set")
        assert client.wait_for_service(10)
        response = client.call(client.srv_type.Request(data=True), timeout_sec=10)
        assert (response.success, response.message) == (True, "ok True")
        node.destroy_node()
    finally:
        runtime.close()
        server.kill()
        server.wait()


def test_speaks_rmw_zenohs_wire_format() -> None:
    """A plain zenoh peer sees what a ROS 2 node under rmw_zenoh would: key, CDR, attachment, tokens."""
    runtime.init([], signals=False)
    try:
        node = runtime.Node("talker", namespace="/demo")
        pub = node.create_publisher("std_msgs/msg/String", "chatter", 10)
        session = runtime.get_context().session
        string_hash = "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
        assert type_hash("std_msgs/msg/String") == string_hash
        samples: list[zenoh.Sample] = []
        sub = session.declare_subscriber(f"0/demo/chatter/std_msgs::msg::dds_::String_/{string_hash}", samples.append)
        time.sleep(0.2)
        msg = pub.msg_type(data="hello")
        pub.publish(msg)
        pub.publish(msg)
        deadline = time.monotonic() + 5
        while len(samples) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(samples) == 2
        assert samples[0].payload.to_bytes() == serialize(msg)
        assert samples[0].payload.to_bytes()[:4] == b"\x00\x01\x00\x00"
        att = [s.attachment.to_bytes() for s in samples]
        assert [len(a) for a in att] == [33, 33]
        seqs = [struct.unpack_from("<q", a)[0] for a in att]
        assert seqs == [1, 2] and att[0][16] == 16 and att[0][17:] == att[1][17:]
        zid = str(session.info.zid())
        tokens = [str(r.ok.key_expr) for r in session.liveliness().get("@ros2_lv/0/**") if r.ok is not None]
        assert any(t.startswith(f"@ros2_lv/0/{zid}/") and t.endswith("/NN/%/%demo/talker") for t in tokens), tokens
        mp = [t for t in tokens if "/MP/" in t and "%demo%chatter" in t]
        assert len(mp) == 1 and mp[0].endswith(f"/%demo%chatter/std_msgs::msg::dds_::String_/{string_hash}/::,10:,:,:,,")
        sub.undeclare()
        node.destroy_node()
    finally:
        runtime.close()


def test_a_slow_keep_last_subscriber_drops_oldest_not_newest() -> None:
    runtime.init([], signals=False)
    try:
        node = runtime.Node("test_depth")
        pub = node.create_publisher("std_msgs/msg/String", "/test/depth", 10)
        got: list[str] = []
        node.create_subscription("std_msgs/msg/String", "/test/depth", lambda m: got.append(m.data), 3)
        assert pub.wait_for_subscribers(1, 5)
        time.sleep(0.2)
        for i in range(50):  # nobody spins meanwhile: the queue keeps only the newest 3
            pub.publish(pub.msg_type(data=str(i)))
        time.sleep(0.5)
        while runtime.spin_once(timeout_sec=0.1):
            pass
        assert got == ["47", "48", "49"]
    finally:
        runtime.close()


@pytest.mark.parametrize("n", [3])
def test_graph_sees_publishers_and_types(n: int) -> None:
    runtime.init([], signals=False)
    try:
        node = runtime.Node("test_graph")
        for i in range(n):
            node.create_publisher("std_msgs/msg/String", f"/test/graph_{i}", 10)
        ok = runtime.get_context().graph.wait_for(
            lambda: sum(t.startswith("/test/graph_") for t, _ in node.get_topic_names_and_types()) == n, 5
        )
        assert ok
        assert dict(node.get_topic_names_and_types())["/test/graph_0"] == ["std_msgs/msg/String"]
        assert "test_graph" in node.get_node_names()
    finally:
        runtime.close()
