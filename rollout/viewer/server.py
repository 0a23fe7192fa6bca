"""The viser server behind a Viewer: its port checked first, its banner silenced, lit, and notices.

    check_port("127.0.0.1", 8080)                  # PortInUseError when something listens there
    server = start_server("127.0.0.1", 8080, "rollout")
    notify_pages(server, "Replay ended", "Played to step 99.", color="blue", seconds=8.0)
    stop_quietly(server)
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import socket
from typing import Any

from rollout.errors import PortInUseError, TransportError

log = logging.getLogger(__name__)


def check_port(host: str, port: int, what: str = "viewer") -> None:
    """Raise `PortInUseError` when something already listens on host:port (port 0: any free port)."""
    if port == 0:
        return
    if not 0 < port < 65536:
        raise TransportError(f"port {port} is not a TCP port (1-65535)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUseError(port, what) from None
            raise TransportError(f"the {what} cannot listen on {host}:{port}: {e.strerror}") from None


def start_server(host: str, port: int, title: str) -> Any:
    """A started `viser.ViserServer` that refuses other sites' pages (port 0: any free port)."""
    check_port(host, port)
    import viser

    from rollout.viewer import origin

    origin.install()  # before viser starts its WebSocket server: other sites' pages are refused

    with contextlib.redirect_stdout(io.StringIO()):  # viser prints a banner; we print one line
        server = viser.ViserServer(host=host, port=port, label=title, verbose=False)
    if port and server.get_port() != port:  # taken between our check and viser's bind
        stop_quietly(server)
        raise PortInUseError(port, "viewer")
    # lit by lights alone (robots are matte, see glb.py): with viser's default environment map
    # the canvas stays at 5 % opacity until its HDR image is decoded: seconds in software GL
    server.scene.configure_environment_map(None)
    server.scene.add_light_hemisphere("/lights/sky", ground_color=(120, 110, 100), intensity=1.0)
    return server


def stop_quietly(server: Any) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        server.stop()


def notify_pages(server: Any, title: str, body: str, *, color: str, seconds: float | None) -> None:
    """A notice on every page open now (`seconds` None: until closed)."""
    for client in list(server.get_clients().values()):
        try:
            client.add_notification(title, body, auto_close_seconds=seconds, color=color)  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 -- a page that went away must not break the others
            log.debug("viewer: notice not shown: %s", e)
