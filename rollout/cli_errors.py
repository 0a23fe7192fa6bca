"""How every entry point turns a user's mistake into one line and a non-zero exit."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

from rollout.errors import RolloutError

F = TypeVar("F", bound=Callable[..., object])

EXIT_USER_ERROR = 2


def fail(message: str, *, prog: str = "rollout") -> None:
    """Print `prog: error: message` on stderr and exit 2."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
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
