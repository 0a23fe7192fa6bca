"""The zenoh backend's module functions (rclpy's names): the `Backend` of `rollout.runtime.api`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from rollout.runtime.context import close, get_context, init, ok, shutdown
from rollout.runtime.node import Future, Node
from rollout.runtime.running import run_node_on

__all__ = ["Node", "close", "exit_code", "init", "ok", "run_node", "shutdown", "spin", "spin_once", "spin_until_future_complete"]


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


def exit_code() -> int:
    """The code `shutdown(exit_code)` asked for (0 by default)."""
    return get_context().exit_code


def run_node(factory: Callable[..., Node], args: list[str] | None = None) -> None:
    """The body of every node's `main` (see `rollout.runtime.running.run_node_on`)."""
    run_node_on(sys.modules[__name__], factory, args)
