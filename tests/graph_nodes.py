"""Small nodes the runtime tests start as separate processes: a publisher, a subscriber, a server.

    python tests/graph_nodes.py pub --topic /big --count 20 --size 5000000 --qos lossless --wait-subs 1
    python tests/graph_nodes.py sub --topic /big --count 20 --out result.json
    python tests/graph_nodes.py server --name /add
    python tests/graph_nodes.py echo --topic /ping --to /pong
    python tests/graph_nodes.py params --ros-args -p count:=4

Each runs on the backend `rollout.runtime` picks (ROLLOUT_BACKEND=zenoh or rclpy).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from rollout import runtime
from rollout.runtime import LATCHED, LOSSLESS, Node

TYPE = "sensor_msgs/msg/CompressedImage"  # header + format string + uint8[] data: any size
QOS = {"lossless": LOSSLESS, "latched": LATCHED, "default": 10}


def payload(i: int, size: int) -> np.ndarray:
    """Message i's bytes: different for every i, cheap to make and to check."""
    return (np.arange(size, dtype=np.uint32) * 2654435761 + i).astype(np.uint8)


def digest(data: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=8).hexdigest()


def publish(a: argparse.Namespace) -> None:
    node = Node("test_pub")
    pub = node.create_publisher(TYPE, a.topic, QOS[a.qos])
    if a.wait_subs:
        pub.wait_for_subscribers(a.wait_subs, timeout=20)
    msg = pub.msg_type()
    for i in range(a.count):
        msg.format = str(i)
        msg.data = payload(i, a.size)
        pub.publish(msg)
    print("published", a.count, flush=True)
    if a.linger:
        runtime.spin()  # keep a latched message available until stopped


def subscribe(a: argparse.Namespace) -> None:
    node = Node("test_sub")
    got: list[tuple[int, int, str]] = []

    def on_msg(msg: object, info: dict) -> None:
        now = time.time_ns()
        got.append((int(msg.format), info["publication_sequence_number"], digest(msg.data),
                    info["source_timestamp"], info["received_timestamp"], now))
        if a.delay:
            time.sleep(a.delay)  # a slow subscriber: a keep-all publisher must wait, not drop
        if len(got) >= a.count:
            runtime.shutdown()

    node.create_subscription(TYPE, a.topic, on_msg, QOS[a.qos])
    print("subscribed", flush=True)
    runtime.spin()
    with open(a.out, "w") as f:
        json.dump(got, f)


def echo(a: argparse.Namespace) -> None:
    """Republish every message of `--topic` on `--to` (the other direction of a pub/sub test)."""
    node = Node("test_echo")
    pub = node.create_publisher(TYPE, a.to, LOSSLESS)
    node.create_subscription(TYPE, a.topic, lambda data: pub.publish(data), LOSSLESS, raw=True)
    print("echoing", flush=True)
    runtime.spin()


@dataclass(frozen=True)
class TestParams:
    count: int = 1
    """How many."""
    rate: float = 1.0
    """How fast."""
    label: str = "x"
    """A name."""
    flag: bool = False
    """On or off."""
    ids: tuple[int, ...] = ()
    """Some numbers."""


class ParamsNode(Node):
    def __init__(self, args: list[str] | None = None) -> None:
        super().__init__("test_params", params=TestParams, cli_args=args)
        print(json.dumps({k: [v, type(v).__name__] for k, v in asdict(self.params).items()}), flush=True)
        runtime.shutdown()


def serve(a: argparse.Namespace) -> None:
    node = Node("test_server")

    def on_request(request: object, response: object) -> object:
        response.success = True
        response.message = f"ok {request.data}"
        return response

    node.create_service("std_srvs/srv/SetBool", a.name, on_request)
    print("serving", flush=True)
    runtime.spin()


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("pub", "sub"):
        s = sub.add_parser(mode)
        s.add_argument("--topic", required=True)
        s.add_argument("--count", type=int, default=1)
        s.add_argument("--qos", default="lossless", choices=QOS)
        if mode == "pub":
            s.add_argument("--size", type=int, default=16)
            s.add_argument("--wait-subs", type=int, default=0)
            s.add_argument("--linger", action="store_true")
        else:
            s.add_argument("--out", required=True)
            s.add_argument("--delay", type=float, default=0.0)
    s = sub.add_parser("server")
    s.add_argument("--name", required=True)
    s = sub.add_parser("echo")
    s.add_argument("--topic", required=True)
    s.add_argument("--to", required=True)
    if sys.argv[1:2] == ["params"]:  # a node as `ros2 run` starts it: run_node, --ros-args
        runtime.run_node(ParamsNode, sys.argv[2:])
    a = p.parse_args()
    runtime.init([])
    try:
        {"pub": publish, "sub": subscribe, "server": serve, "echo": echo}[a.mode](a)
    finally:
        runtime.close()


if __name__ == "__main__":
    sys.exit(main())
