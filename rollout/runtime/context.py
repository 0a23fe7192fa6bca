"""One zenoh session per process, the ROS graph it sees, and the queue its callbacks run from.

Network: never multicast. A process connects to the router endpoint (`ROLLOUT_ROUTER`, default
`tcp/127.0.0.1:7447`, rmw_zenoh's router port) when something answers there; otherwise it becomes
the router itself, so `rollout run` works alone. Every session also listens on a fresh loopback
port, and gossip lets peers connect to each other directly, so traffic does not go through the
router and outlives it.

A graph is the set of processes that share one router. `rollout launch` gives its nodes a graph
of their own (`launch_endpoint`): it hosts the router on `ROLLOUT_ROUTER`'s port when that is
free and on a fresh loopback port when it is not, so two launches on one machine never see each
other's topics; joining an existing graph is something the user asks for (`--join`).

Across machines: a router also links to the routers named in `ROLLOUT_ROUTERS` (comma separated
`tcp/HOST:PORT`, the other hosts' `ROLLOUT_ROUTER`), retrying in the background until they answer
and again whenever a link drops, so hosts may start in any order. Give `ROLLOUT_ROUTER` an address
of this host that the others reach (not 127.0.0.1) on a host that others link to. The link's lease
(`ROLLOUT_LEASE`, seconds, default 60) is how long a silent link is held open: a network outage
shorter than it loses nothing (TCP resends, BLOCK publishers wait); a longer one closes the link,
and the recorder reports the messages that never came as gaps in publishers' sequence numbers.

A node started by the launcher watches a pipe from it (`ROLLOUT_LAUNCHER_FD`): when the launcher
dies, even by SIGKILL, the pipe reads end-of-file, the node shuts down, and if it has not exited
`ORPHAN_EXIT` s later the process ends itself, so no node outlives its launcher by more than that.
"""

from __future__ import annotations

import ctypes
import atexit
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

import zenoh

from rollout.errors import PortInUseError, TransportError
from rollout.runtime.executor import Executor
from rollout.runtime.names import ADMIN_SPACE, Entity, domain_id, parse_token

DEFAULT_ROUTER = "tcp/127.0.0.1:7447"
DEFAULT_LEASE = 60.0  # seconds; rmw_zenoh's value
LAUNCHER_FD = "ROLLOUT_LAUNCHER_FD"
ORPHAN_EXIT = 1.6  # seconds an orphaned node has to finish its files before it ends itself
FLUSH_KEY = "@rollout/flush"  # every session's delivery barrier (see Context.close)
FLUSH_TIMEOUT = 120.0  # seconds a closing keep-all publisher waits for its slowest subscriber


def router_endpoint() -> str:
    return os.environ.get("ROLLOUT_ROUTER", DEFAULT_ROUTER).strip() or DEFAULT_ROUTER


def linked_routers() -> list[str]:
    """Other hosts' router endpoints this process's router links to (`ROLLOUT_ROUTERS`)."""
    endpoints = [e.strip() for e in os.environ.get("ROLLOUT_ROUTERS", "").split(",") if e.strip()]
    for e in endpoints:
        _host_port(e)  # one clear line for a malformed endpoint
    return endpoints


def link_lease_ms() -> int:
    raw = os.environ.get("ROLLOUT_LEASE", "").strip()
    try:
        lease = float(raw) if raw else DEFAULT_LEASE
        if lease <= 0:
            raise ValueError
    except ValueError:
        raise TransportError(f"ROLLOUT_LEASE must be a positive number of seconds, not {raw!r}") from None
    return max(1000, round(lease * 1000))


def _host_port(endpoint: str) -> tuple[str, int]:
    try:
        proto, address = endpoint.split("/", 1)
        host, port = address.rsplit(":", 1)
        if proto != "tcp":
            raise ValueError
        return host.strip("[]"), int(port)
    except ValueError:
        raise TransportError(f"router endpoint {endpoint!r} is not of the form tcp/HOST:PORT") from None


def router_answers(endpoint: str, timeout: float = 0.3) -> bool:
    """Whether something accepts TCP connections on the router endpoint."""
    host, port = _host_port(endpoint)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_endpoint() -> str:
    """A loopback endpoint on a port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp/127.0.0.1:{s.getsockname()[1]}"


def launch_endpoint(*, join: bool) -> tuple[str, bool]:
    """The router endpoint a launch uses for its nodes, and whether it joins a running graph.

    join: use `ROLLOUT_ROUTER` as it is (connect to the graph there, or host it when nothing
    answers). Otherwise the launch hosts a graph of its own: on `ROLLOUT_ROUTER`'s port when it is
    free, so ROS 2 tools and `rollout node list` reach the first launch as before, and on a fresh
    loopback port when another graph holds it.
    """
    endpoint = router_endpoint()
    if join:
        return endpoint, router_answers(endpoint)
    if router_answers(endpoint):
        return free_endpoint(), False
    return endpoint, False


def _config(mode: str, connect: list[str], listen: list[str]) -> zenoh.Config:
    lease = link_lease_ms()
    if mode == "router":
        # other hosts' routers: keep trying in the background (they may start later, links drop)
        links = {"endpoints": linked_routers(), "timeout_ms": -1, "exit_on_failure": False,
                 "retry": {"period_init_ms": 250, "period_max_ms": 1000, "period_increase_factor": 2}}  # fmt: skip
    else:
        links = {"endpoints": connect, "timeout_ms": 3000, "exit_on_failure": True}
    cfg = {
        "mode": mode,
        "connect": links,
        "listen": {"endpoints": listen},
        "scouting": {"multicast": {"enabled": False}, "gossip": {"enabled": True}},
        # advanced publishers (transient local) need timestamps, as in rmw_zenoh's configs
        "timestamping": {"enabled": {"router": True, "peer": True, "client": True}},
        # rmw_zenoh's values: a BLOCK publisher whose subscriber stalls (a recorder on a slow disk) closes
        # the link only after 60 s (zenoh: 5 s), and a closing session gets lease / keep_alive = 30 s
        # (zenoh: 2.5 s) to flush what is still queued for a slow subscriber, instead of dropping it;
        # both follow ROLLOUT_LEASE (a short lease must also stop a publisher blocked on a dead link)
        "transport": {
            "link": {
                "tx": {
                    "lease": lease,
                    "keep_alive": 4 if lease < 10_000 else 2,
                    "queue": {"congestion_control": {"block": {"wait_before_close": lease * 1000}}},
                }
            }
        },
    }
    return zenoh.Config.from_json5(json.dumps(cfg))


def open_session(*, as_router: bool | None = None) -> tuple[zenoh.Session, bool]:
    """Open this process's session; returns it and whether it hosts the router.

    as_router: True to insist on hosting the router (the launcher), None to host it only when
    nothing answers on the router endpoint.
    """
    endpoint = router_endpoint()
    host, port = _host_port(endpoint)
    for attempt in range(3):  # a router that was just stopped may still answer for a moment
        if as_router or (as_router is None and not router_answers(endpoint)):
            try:
                return zenoh.open(_config("router", [], [endpoint, "tcp/127.0.0.1:0"])), True
            except zenoh.ZError as e:
                if as_router or not router_answers(endpoint):  # else another process won the race: join it
                    raise PortInUseError(port, f"the zenoh router ({endpoint})") from e
        try:
            return zenoh.open(_config("peer", [endpoint], ["tcp/127.0.0.1:0"])), False
        except zenoh.ZError as e:
            if attempt == 2 or router_answers(endpoint):
                raise TransportError(
                    f"cannot join the zenoh router at {endpoint}: {str(e).splitlines()[0].split(' at ')[0]} "
                    "(is another program using that port? set ROLLOUT_ROUTER=tcp/127.0.0.1:PORT)"
                ) from e
    raise AssertionError("unreachable")


def reuse_freed_buffers() -> None:
    """Let glibc keep freed big buffers for the next message instead of returning them to the OS.

    Every received message is a fresh `bytes` (zenoh copies the payload out); with glibc's dynamic
    thresholds, two big messages alive at once (one in a subscription's queue, one arriving) make
    `free` trim the heap, and the next message page-faults all its memory in again: ~270 faults
    and ~3x the CPU per 5 MB message (bench/transport.py). A fixed mmap threshold at glibc's
    maximum (32 MiB) and a 128 MiB trim threshold stop that. Left alone when MALLOC_* tunables
    are set or the C library is not glibc.
    """
    if sys.platform != "linux" or any(k.startswith(("MALLOC_", "GLIBC_TUNABLES")) for k in os.environ):
        return
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, ValueError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, 32 << 20)
    mallopt(M_TRIM_THRESHOLD, 128 << 20)


class Graph:
    """The ROS graph from liveliness tokens: every node, publisher, subscription and service."""

    def __init__(self, session: zenoh.Session, domain: int) -> None:
        self._entities: dict[str, Entity] = {}
        self._lock = threading.RLock()  # predicates of wait_for read the graph while holding it
        self.interrupted = threading.Event()  # set on shutdown: waits give up
        self._changed = threading.Condition(self._lock)
        self._sub = session.liveliness().declare_subscriber(f"{ADMIN_SPACE}/{domain}/**", self._on_token, history=True)

    def _on_token(self, sample: zenoh.Sample) -> None:
        key = str(sample.key_expr)
        with self._changed:
            if sample.kind == zenoh.SampleKind.PUT:
                entity = parse_token(key)
                if entity is not None:
                    self._entities[key] = entity
            else:
                self._entities.pop(key, None)
            self._changed.notify_all()

    def entities(self, kind: str | None = None) -> list[Entity]:
        with self._lock:
            return [e for e in self._entities.values() if kind is None or e.kind == kind]

    def count(self, kind: str, name: str) -> int:
        return sum(1 for e in self.entities(kind) if e.name == name)

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Block until `predicate()` holds (re-checked on every graph change) or time runs out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not predicate():
                if self.interrupted.is_set():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(0.1 if left is None else min(left, 0.1))
        return True

    def close(self) -> None:
        self._sub.undeclare()


class Context:
    """What `init()` sets up: the session, the graph, the executor and the command line."""

    def __init__(self, args: list[str] | None, *, as_router: bool | None = None) -> None:
        self.args = list(args) if args is not None else []
        self.domain = domain_id()
        reuse_freed_buffers()
        self.session, self.is_router = open_session(as_router=as_router)
        self.zid = str(self.session.info.zid())
        self.graph = Graph(self.session, self.domain)
        self.executor = Executor()
        self.exit_code = 0
        self._ids = 0
        self._ids_lock = threading.Lock()
        self._closed = False
        self.retired: list[object] = []  # zenoh publishers of destroyed nodes, undeclared by session.close()
        self.sends_keep_all = False  # a blocking (keep-all) publisher was declared: close() waits for delivery
        # answered once every sample that came before the query has been handed to this session's
        # subscriptions: a link delivers in order, and a full keep-all subscription holds its link
        flush_key = f"{FLUSH_KEY}/{self.domain}/{self.zid}"
        self._flush = self.session.declare_queryable(flush_key, lambda query: query.reply(flush_key, b""))
        self.pumps: list[threading.Thread] = []  # keep-all subscriptions' threads, done once the session closes
        self.orphaned_at: float | None = None  # monotonic time the launcher was found gone
        _watch_launcher(self)

    def stop_time_left(self) -> float | None:
        """Seconds left before this orphaned process ends itself (None: its launcher is alive)."""
        if self.orphaned_at is None:
            return None
        return max(0.0, self.orphaned_at + ORPHAN_EXIT - time.monotonic())

    def next_id(self) -> int:
        with self._ids_lock:
            self._ids += 1
            return self._ids

    def request_shutdown(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code or self.exit_code
        self.graph.interrupted.set()
        self.executor.stop()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.executor.stop()
        try:
            if self.sends_keep_all:
                self._wait_for_delivery()
            self.graph.close()
        finally:
            self.session.close()
            self.retired.clear()
            for pump in self.pumps:  # a thread still in zenoh at interpreter exit aborts the process
                pump.join(1.0)


    def _wait_for_delivery(self) -> None:
        """Return once every session has taken what this one published, or after FLUSH_TIMEOUT.

        Closing a session loses what it still has queued for a subscriber that is behind (the last
        steps a busy video encoder has not taken yet). A query sent now travels behind those
        samples on every link, so each session's reply says that they have all reached it."""
        replies = self.session.get(
            f"{FLUSH_KEY}/{self.domain}/*",
            target=zenoh.QueryTarget.ALL,
            consolidation=zenoh.ConsolidationMode.NONE,
            timeout=FLUSH_TIMEOUT,
        )
        said = time.monotonic() + 2.0
        while True:  # polled, so that a second Ctrl-C still ends the wait
            try:
                if replies.try_recv() is not None:
                    continue
            except zenoh.ZError:  # every session answered (or the timeout passed)
                return
            if said is not None and time.monotonic() > said:
                said = None
                print(f"[rollout] waiting for subscribers to take the last messages (at most {FLUSH_TIMEOUT:g} s)",
                      file=sys.stderr, flush=True)  # fmt: skip
            time.sleep(0.005)


def _watch_launcher(ctx: Context) -> None:
    """Shut down when the launcher that started this process dies (its pipe reads end-of-file)."""
    raw = os.environ.pop(LAUNCHER_FD, "")  # for this process only, not for anything it starts
    if not raw.isdigit():
        return
    fd = int(raw)

    def watch() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        ctx.orphaned_at = time.monotonic()
        # the backstop is the kernel's: SIGALRM's default action ends the process even while a call
        # into zenoh holds the interpreter lock (a Python timer or handler would never run then)
        signal.setitimer(signal.ITIMER_REAL, ORPHAN_EXIT)
        ctx.request_shutdown(1)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


_context: Context | None = None
_context_lock = threading.Lock()


def init(args: list[str] | None = None, *, as_router: bool | None = None, signals: bool = True) -> Context:
    """Start the runtime for this process (like `rclpy.init`); idempotent.

    args: the command line after the program name (parameters come from its `--ros-args`).
    signals: stop spinning on SIGINT/SIGTERM (only possible from the main thread).
    """
    global _context
    with _context_lock:
        if _context is None:
            _context = Context(args, as_router=as_router)
            atexit.register(close)  # an open session would keep the interpreter from exiting
            if signals and threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, _on_signal)
        return _context


def _on_signal(signum: int, frame: object) -> None:
    if _context is not None:
        _context.request_shutdown()


def get_context() -> Context:
    if _context is None:
        return init()
    return _context


def ok() -> bool:
    return _context is not None and not _context.executor.stopped


def shutdown(exit_code: int = 0) -> None:
    """Stop spinning (callable from any callback or thread); `run_node` then exits with `exit_code`."""
    if _context is not None:
        _context.request_shutdown(exit_code)


def close() -> None:
    """Close the session (after the nodes are destroyed)."""
    global _context
    with _context_lock:
        if _context is not None:
            _context.close()
            _context = None
