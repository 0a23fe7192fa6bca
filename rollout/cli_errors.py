"""How every entry point turns a user's mistake into one line and a non-zero exit."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

from rollout.errors import RolloutError

F = TypeVar("F", bound=Callable[..., object])

EXIT_USER_ERROR = 2


def report(message: object, *, prog: str = "rollout") -> None:
    """Print `prog: error: message` on stderr: the one place that line is written (a message of
    several lines, from outside our code, is cut to its first)."""
    text = str(message).strip().splitlines()
    print(f"{prog}: error: {text[0] if text else type(message).__name__}", file=sys.stderr, flush=True)


def fail(message: str, *, prog: str = "rollout") -> None:
    """Print `prog: error: message` on stderr and exit 2."""
    report(message, prog=prog)
    raise SystemExit(EXIT_USER_ERROR)


def user_errors_exit(prog: str) -> Callable[[F], F]:
    """Decorate a `main`: a `RolloutError` ends in one line on stderr and exit code 2;
    Ctrl-C ends quietly with 130 unless the node handled it itself."""

    def wrap(main: F) -> F:
        @functools.wraps(main)
        def run(*args: object, **kwargs: object) -> object:
            try:
                return main(*args, **kwargs)
            except RolloutError as e:
                fail(str(e), prog=prog)
            except KeyboardInterrupt:
                raise SystemExit(130) from None
            return None

        return run  # type: ignore[return-value]

    return wrap
