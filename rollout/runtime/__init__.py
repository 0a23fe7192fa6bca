"""The runtime: rclpy's Node API over zenoh, speaking rmw_zenoh's wire format.

    from rollout.runtime import Node, run_node, LATCHED, LOSSLESS

    class Talker(Node):
        def __init__(self, args=None):
            super().__init__("talker", params=TalkerParams, cli_args=args)
            self.pub = self.create_publisher("std_msgs/msg/String", "/chatter", 10)

    def main(args=None):
        run_node(Talker, args)

`init`, `spin`, `spin_once`, `shutdown` and `ok` mirror rclpy's module functions. The rclpy
backend (`rollout.runtime.ros`) is used instead when ROS 2 is sourced (see `backend()`).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import sys
import time
from collections.abc import Callable

from rollout.cli_errors import EXIT_USER_ERROR, report
from rollout.errors import RolloutError
from rollout.runtime.context import close, get_context, init, ok, shutdown
from rollout.runtime.node import Client, Future, Node, Publisher, Service, Subscription
from rollout.runtime.qos import (
    LATCHED,
    LOSSLESS,
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_default,
    qos_profile_sensor_data,
)

__all__ = [
    "LATCHED",
    "LOSSLESS",
    "Client",
    "DurabilityPolicy",
    "Future",
    "HistoryPolicy",
    "Node",
    "Publisher",
    "QoSProfile",
    "ReliabilityPolicy",
    "Service",
    "Subscription",
    "close",
    "init",
    "ok",
    "qos_profile_default",
    "qos_profile_sensor_data",
    "run_node",
    "shutdown",
    "spin",
    "spin_once",
    "spin_until_future_complete",
]


def backend() -> str:
    """"rclpy" when ROS 2 is sourced and rclpy imports, else "zenoh"; `ROLLOUT_BACKEND` forces one."""
    forced = os.environ.get("ROLLOUT_BACKEND", "").strip().lower()
    if forced in ("zenoh", "rclpy"):
        return forced
    if forced:
        raise SystemExit(f"rollout: error: ROLLOUT_BACKEND must be zenoh or rclpy, not {forced!r}")
    return "rclpy" if os.environ.get("ROS_DISTRO") and importlib.util.find_spec("rclpy") else "zenoh"


def spin(node: Node | None = None) -> None:
    """Run callbacks until `shutdown()`, Ctrl-C or SIGTERM."""
    get_context().executor.spin()


def spin_once(node: Node | None = None, *, timeout_sec: float | None = None) -> bool:
    return get_context().executor.spin_once(timeout_sec)


def spin_until_future_complete(node: Node | None, future: Future, timeout_sec: float | None = None) -> None:
    deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
    executor = get_context().executor
    while not future.done() and not executor.stopped:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        executor.spin_once(0.05 if left is None else min(left, 0.05))


def run_node(factory: Callable[..., Node], args: list[str] | None = None) -> None:
    """The body of every node's `main`: start, build the node, spin, clean up, exit.

    A `RolloutError` (a user's mistake: bad path, parameter, port in use...) while building or
    running ends in one line, `<node>: error: <message>`, and exit code 2.
    """
    argv = sys.argv[1:] if args is None else list(args)
    prog = re.sub(r"(?<!^)(?=[A-Z])", "_", getattr(factory, "__name__", "node")).lower()  # ViserBridge -> viser_bridge
    node: Node | None = None
    code = 0
    try:
        init(argv)
        wants_args = bool(inspect.signature(factory).parameters)
        node = factory(argv) if wants_args else factory()
        prog = node.get_name()
        spin(node)
        code = get_context().exit_code
    except RolloutError as e:
        report(e, prog=prog)
        code = EXIT_USER_ERROR
    except KeyboardInterrupt:
        code = 0
    finally:
        try:
            if node is not None:
                node.destroy_node()
        except RolloutError as e:
            report(e, prog=prog)
            code = code or EXIT_USER_ERROR
        finally:
            close()
    raise SystemExit(code)


if backend() == "rclpy":  # the same names, over ROS 2
    try:
        from rollout.runtime.ros import Node, close, init, ok, run_node, shutdown, spin, spin_once  # noqa: F811
    except ImportError as e:
        raise SystemExit(f"rollout: error: the rclpy backend needs ROS 2 sourced ({e})") from None
