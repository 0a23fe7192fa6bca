"""The bridge is a best-effort consumer: a topic larger than its budget (`max_mb_s`) reaches a
Foxglove client at that rate, and between the messages it passes on the bridge is not subscribed,
so the publisher sends the topic to the recorder alone (what keeps a 1,024-env recording at full
speed with Foxglove watching)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import rollout.runtime as rt
from rollout.runtime import Node
from test_foxglove_live import ROOT, foxglove_client, free_port, result, wait_until

TOPIC = "/test/big"
SIZE = 200_000  # bytes per message
RATE = 100  # messages per second published: 20 MB/s
BUDGET_MB_S = 2.0  # the bridge's: one message every 0.1 s


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch):
    """This process hosts a graph of its own; a publisher of large messages in it."""
    monkeypatch.setenv("ROLLOUT_ROUTER", f"tcp/127.0.0.1:{free_port()}")
    rt.init([], signals=False)
    node = Node("_budget_publisher")
    yield node, node.create_publisher("std_msgs/msg/String", TOPIC, 2)
    node.destroy_node()
    rt.close()


def test_a_topic_over_budget_is_shown_at_max_mb_s_and_sent_to_the_bridge_only_then(graph, tmp_path: Path) -> None:
    node, pub = graph
    port, log = free_port(), tmp_path / "bridge.log"
    with log.open("w") as out:
        bridge = subprocess.Popen(
            [sys.executable, "-m", "rollout.nodes.foxglove_bridge", "--ros-args", "-p", f"port:={port}",
             "-p", f"max_mb_s:={BUDGET_MB_S}", "-p", "max_rate:=0"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=out, text=True,
        )  # fmt: skip
    try:
        wait_until(lambda: f"advertising {TOPIC}" in log.read_text(), 60, f"the bridge to advertise {TOPIC}")
        client = foxglove_client({"url": f"ws://127.0.0.1:{port}", "topics": {TOPIC: 10**6}, "summary": True, "idleMs": 1500})
        wait_until(lambda: pub.get_subscription_count() == 1, 60, "the bridge to subscribe for its client")
        msg = pub.msg_type(data="x" * SIZE)
        seconds, subscribed, start = 3.0, [], time.monotonic()
        while time.monotonic() < start + seconds:
            subscribed.append(pub.get_subscription_count())
            pub.publish(msg)
            time.sleep(max(0.0, start + len(subscribed) / RATE - time.monotonic()))
        got = result(client)["messages"][TOPIC]
    finally:
        bridge.terminate()
        bridge.wait(30)
    assert "Traceback" not in log.read_text(), log.read_text()
    published, expected = len(subscribed), BUDGET_MB_S * 1e6 * seconds / SIZE  # 300 published, 30 in budget
    assert 0.5 * expected <= len(got) <= 1.3 * expected + 1, (len(got), published)
    assert all(m["size"] > SIZE for m in got)  # whole messages, not cut ones
    # the bridge took only what it passed on: it was subscribed at a minority of the publishes
    assert sum(subscribed) < 0.5 * published, (sum(subscribed), published)
