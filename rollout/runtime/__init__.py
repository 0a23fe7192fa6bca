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
import os

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


if backend() == "rclpy":  # the same names, over ROS 2
    try:
        from rollout.runtime.ros import Node, close, init, ok, run_node, shutdown, spin, spin_once  # noqa: F811
        from rollout.runtime.ros import spin_until_future_complete  # noqa: F811
    except ImportError as e:
        raise SystemExit(f"rollout: error: the rclpy backend needs ROS 2 sourced ({str(e).splitlines()[0]})") from None
else:
    from rollout.runtime.zenoh_backend import run_node, spin, spin_once, spin_until_future_complete
