"""Every test session gets its own zenoh router port, so parallel runs and stray nodes never meet."""

import os
import socket


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Set at import, before any test opens a session; node processes started by tests inherit it.
os.environ["ROLLOUT_ROUTER"] = f"tcp/127.0.0.1:{_free_port()}"
