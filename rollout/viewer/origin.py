"""Refuse cross-origin WebSocket connections to the viewer.

Browsers let any page open a WebSocket to any address, and say where the page came from in the
`Origin` header. A page on another site, open in the user's browser, could otherwise receive the
scene stream and send GUI events (seek, policy off). viser serves the page and the WebSocket on
one port through `websockets`, without an origin check or a way to add one, so the check wraps
the `process_request` hook of every `websockets.asyncio.server.serve` made in this process:

- no `Origin` header (the CLI, scripts, non-browser clients): accepted;
- an `Origin` whose host:port is the `Host` the request was sent to (the viewer's own page): accepted;
- anything else (another site, `null` from a file:// page): 403 before the handshake completes.

A `Host` that is not a loopback name is refused too while the server binds a loopback address,
so a rebound DNS name (evil.example resolving to 127.0.0.1) does not pass as same-origin.

    install()                          # idempotent; the Viewer calls it before starting viser
    refusal(headers, bound_host)       # the check itself: None or a one-line reason
"""

from __future__ import annotations

import functools
import http
import inspect
import logging
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_installed = False
_lock = threading.Lock()


def _host_port(netloc: str, default_port: int) -> tuple[str, int] | None:
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port or default_port
    except ValueError:
        return None
    return (parts.hostname or "").lower(), port


def _is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")


def refusal(headers: Mapping[str, str], bound_host: str = "127.0.0.1") -> str | None:
    """Why a WebSocket upgrade with these request headers is refused, or None to accept it."""
    origin = headers.get("Origin")
    if origin is None:
        return None
    host_header = headers.get("Host", "")
    o = urlsplit(origin)
    if o.scheme not in ("http", "https") or not o.netloc:
        return f"cross-origin WebSocket refused (Origin {origin!r})"
    default = 443 if o.scheme == "https" else 80
    got, want = _host_port(o.netloc, default), _host_port(host_header, default)
    if got is None or want is None or got != want:
        return f"cross-origin WebSocket refused (Origin {origin!r}, Host {host_header!r})"
    if _is_loopback(bound_host.lower()) and not _is_loopback(want[0]):
        return f"WebSocket refused: Host {host_header!r} is not this machine's loopback name"
    return None


def _checked(process_request: Any, bound_host: str) -> Any:
    """`process_request` with the origin check in front of it."""

    def check(connection: Any, request: Any) -> Any:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return None
        reason = refusal(request.headers, bound_host)
        if reason is None:
            return None
        log.warning("viewer: %s", reason)
        return connection.respond(http.HTTPStatus.FORBIDDEN, reason + "\n")

    if process_request is None:
        return check
    if inspect.iscoroutinefunction(process_request):

        async def both_async(connection: Any, request: Any) -> Any:
            return check(connection, request) or await process_request(connection, request)

        return both_async

    def both(connection: Any, request: Any) -> Any:
        return check(connection, request) or process_request(connection, request)

    return both


def install() -> None:
    """Wrap `websockets.asyncio.server.serve` so that every server gets the origin check (once)."""
    global _installed
    with _lock:
        if _installed:
            return
        import websockets.asyncio.server as server

        original = server.serve

        @functools.wraps(original)
        def serve(handler: Any, host: str | None = None, port: int | None = None, **kwargs: Any) -> Any:
            kwargs["process_request"] = _checked(kwargs.get("process_request"), host or "127.0.0.1")
            return original(handler, host, port, **kwargs)

        server.serve = serve  # type: ignore[assignment,misc]
        _installed = True
