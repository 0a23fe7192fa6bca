"""`run_node`, the body of every node's `main`, the same on both backends."""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, NoReturn

from rollout.cli_errors import EXIT_USER_ERROR, report
from rollout.errors import RolloutError


def program_name(factory: Callable[..., object]) -> str:
    """What an error line starts with before the node has a name: ViserBridge -> viser_bridge."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", getattr(factory, "__name__", "node")).lower()


def run_node_on(
    backend: ModuleType,
    factory: Callable[..., Any],
    args: list[str] | None,
    stopped: tuple[type[BaseException], ...] = (KeyboardInterrupt,),
) -> NoReturn:
    """Start `backend`, build the node, spin, clean up, exit with the code `shutdown` was given.

    A `RolloutError` (a user's mistake: bad path, parameter, port in use...) while building or
    running ends in one line, `<node>: error: <message>`, and exit code 2.
    """
    argv = sys.argv[1:] if args is None else list(args)
    prog = program_name(factory)
    node = None
    code = 0
    try:
        backend.init(argv)
        node = factory(argv) if inspect.signature(factory).parameters else factory()
        prog = node.get_name()
        backend.spin(node)
        code = backend.exit_code()
    except RolloutError as e:
        report(e, prog=prog)
        code = EXIT_USER_ERROR
    except stopped:
        code = backend.exit_code()
    finally:
        try:
            if node is not None:
                node.destroy_node()
        except RolloutError as e:
            report(e, prog=prog)
            code = code or EXIT_USER_ERROR
        finally:
            backend.close()
    raise SystemExit(code)
