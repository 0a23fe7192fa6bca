"""Resolve the `package.module:callable` specs that envs and policies accept."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def load_callable(module_name: str, attr: str, *, what: str, error: type[Exception]) -> Callable[..., Any]:
    """`module_name.attr`, imported; `error` (one line naming `what`) when it cannot be had."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise error(f"cannot import {what} module {module_name} ({e})") from None
    found = getattr(module, attr, None)
    if not callable(found):
        raise error(f"{what} module {module_name} has no callable {attr}")
    return found
