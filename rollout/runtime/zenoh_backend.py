"""The zenoh backend's module functions (rclpy's names): the `Backend` of `rollout.runtime.api`."""

from __future__ import annotations

import inspect
import re
import sys
import time
from collections.abc import Callable

from rollout.cli_errors import EXIT_USER_ERROR, report
from rollout.errors import RolloutError
from rollout.runtime.context import close, get_context, init, ok, shutdown
from rollout.runtime.node import Future, Node

__all__ = ["Node", "close", "init", "ok", "run_node", "shutdown", "spin", "spin_once", "spin_until_future_complete"]


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


def program_name(factory: Callable[..., object]) -> str:
    """What an error line starts with before the node has a name: ViserBridge -> viser_bridge."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", getattr(factory, "__name__", "node")).lower()


def run_node(factory: Callable[..., Node], args: list[str] | None = None) -> None:
    """The body of every node's `main`: start, build the node, spin, clean up, exit.

    A `RolloutError` (a user's mistake: bad path, parameter, port in use...) while building or
    running ends in one line, `<node>: error: <message>`, and exit code 2.
    """
    argv = sys.argv[1:] if args is None else list(args)
    prog = program_name(factory)
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
