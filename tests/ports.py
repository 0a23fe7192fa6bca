"""A free TCP port for a test's router, viewer or bridge."""

from __future__ import annotations

import socket

import numpy as np

# Linux hands out 32768-60999 as the local ends of outgoing connections: a port taken from there
# can become one end of a node's own connection before the server meant for it binds it.
_RANGE = np.arange(20000, 32000)


def free_port() -> int:
    """A port on 127.0.0.1 that is free now, from below the ephemeral range."""
    for port in np.random.default_rng().permutation(_RANGE):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", int(port)))
            except OSError:
                continue
            return int(port)
    raise RuntimeError(f"no free port in {_RANGE[0]}-{_RANGE[-1]}")
