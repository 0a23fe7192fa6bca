"""The embedded launcher: every node its own process, output prefixed with its name.

Each launch hosts a zenoh router for its nodes, a graph of their own (on `ROLLOUT_ROUTER`'s port
when free, else a fresh one; `join=True` joins the graph there instead), so two launches never
record each other. It stops all nodes in reverse start order on Ctrl-C/SIGTERM or when a
`shutdown_on_exit` node ends, and exits non-zero when a node failed. Killed outright, it takes
its nodes with it: each gets SIGTERM from the kernel (PR_SET_PDEATHSIG) and sees the end of a
pipe from the launcher, and ends itself if still running shortly after.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from rollout.errors import LaunchError
from rollout.launching.description import Arg, NodeSpec, describe_arguments, parse_launch_arguments

_PR_SET_PDEATHSIG = 1


def launch_dirs() -> list[Path]:
    """Where launch files are looked up by name: the checkout, then installed share dirs."""
    dirs = [Path(__file__).resolve().parents[2] / "launch", Path(sys.prefix) / "share" / "rollout" / "launch"]
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        dirs.append(Path(prefix) / "share" / "rollout" / "launch")
    return [d for d in dirs if d.is_dir()]


def find_launch_file(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    if not name.endswith(".launch.py"):
        name += ".launch.py"
    for d in launch_dirs():
        if (d / name).is_file():
            return d / name
    known = sorted({p.name for d in launch_dirs() for p in d.glob("*.launch.py")})
    raise LaunchError(f"no launch file {name!r}; available: {', '.join(known) or 'none'}")


def load_launch_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"rollout_launch_{path.stem.replace('.', '_')}", path)
    if spec is None or spec.loader is None:
        raise LaunchError(f"{path} is not a Python launch file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "ARGS") or not callable(getattr(module, "nodes", None)):
        raise LaunchError(f"{path} defines no ARGS and nodes(args); it cannot run without ROS 2's launch")
    return module


def _die_with(parent: int) -> Callable[[], None]:
    def set_up() -> None:
        """In the child: get SIGTERM if the launcher dies, so no node outlives it."""
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass
        if os.getppid() != parent:  # the launcher died before prctl: no signal will come
            os._exit(1)

    return set_up


@dataclass
class _Running:
    spec: NodeSpec
    proc: subprocess.Popen[bytes]
    reader: threading.Thread


class Launcher:
    def __init__(self, specs: Sequence[NodeSpec], *, out: object = None) -> None:
        names = [s.node_name for s in specs]
        if len(set(names)) != len(names):
            raise LaunchError(f"two nodes are named {next(n for n in names if names.count(n) > 1)!r}")
        self.specs = list(specs)
        self._out = out or sys.stdout
        self._print_lock = threading.Lock()
        self._running: list[_Running] = []
        self._stop = threading.Event()
        # nodes hold the read end; it reads end-of-file once this process is gone, however it died
        self._alive_r, self._alive_w = os.pipe()

    def say(self, who: str, line: str) -> None:
        with self._print_lock:
            print(f"[{who}] {line}", file=self._out, flush=True)  # type: ignore[call-overload]

    def _pump(self, name: str, stream: object) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            self.say(name, raw.decode(errors="replace").rstrip("\n"))

    def _start(self, spec: NodeSpec) -> _Running:
        cmd = [sys.executable, "-m", f"rollout.nodes.{spec.executable}", *spec.arguments, *spec.ros_args()]
        from rollout.runtime.context import LAUNCHER_FD

        env = dict(os.environ, PYTHONUNBUFFERED="1", **{LAUNCHER_FD: str(self._alive_r)})
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            pass_fds=(self._alive_r,),
            start_new_session=True,  # Ctrl-C reaches the launcher only; it stops nodes in order
            preexec_fn=_die_with(os.getpid()),
        )
        reader = threading.Thread(target=self._pump, args=(spec.node_name, proc.stdout), daemon=True)
        reader.start()
        self.say("launch", f"started {spec.node_name} (pid {proc.pid})")
        return _Running(spec, proc, reader)

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def run(self) -> int:
        """Start every node, wait, stop them all; the exit code is 0 unless a node failed."""
        for spec in self.specs:
            self._running.append(self._start(spec))
        failed: list[str] = []
        reported: set[int] = set()
        ended_by: str | None = None
        while not self._stop.is_set():
            for r in self._running:
                code = r.proc.poll()
                if code is None or r.proc.pid in reported:
                    continue
                reported.add(r.proc.pid)
                r.reader.join(1.0)
                self.say("launch", f"{r.spec.node_name} exited with code {code}")
                if code != 0:
                    failed.append(r.spec.node_name)
                if code != 0 or r.spec.shutdown_on_exit:
                    ended_by = r.spec.node_name
            if ended_by or len(reported) == len(self._running):
                break
            self._stop.wait(0.05)
        self._stop_all()
        for r in self._running:
            if r.proc.pid not in reported and r.proc.returncode not in (0, None, -signal.SIGTERM):
                failed.append(r.spec.node_name)
        if failed:
            self.say("launch", f"failed: {', '.join(failed)}")
            return 1
        return 0

    def _stop_all(self) -> None:
        """SIGTERM every node still running, last started first (a node that is still importing
        ends quietly, a running one finishes its files); SIGKILL after the grace period."""
        for r in reversed(self._running):
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)
                try:
                    r.proc.wait(r.spec.stop_timeout)
                except subprocess.TimeoutExpired:
                    self.say("launch", f"{r.spec.node_name} did not stop within {r.spec.stop_timeout:g} s; killing it")
                    r.proc.kill()
                    r.proc.wait()
            r.reader.join(2.0)


def _open_graph(join: bool) -> tuple[str, bool]:
    """Start this launch's zenoh session (hosting its router unless `join`); the endpoint its
    nodes get in `ROLLOUT_ROUTER`, and whether that graph was already running."""
    from rollout import runtime
    from rollout.errors import PortInUseError
    from rollout.runtime.context import launch_endpoint

    for attempt in range(5):
        endpoint, joining = launch_endpoint(join=join)
        os.environ["ROLLOUT_ROUTER"] = endpoint  # for this process's session and every node's
        try:
            runtime.init([], signals=False, as_router=None if join else True)
            return endpoint, joining
        except PortInUseError:  # another launch took the port between the check and the bind
            if join or attempt == 4:
                raise
    raise AssertionError("unreachable")


def launch(file: str, tokens: Sequence[str], *, join: bool = False) -> int:
    """`rollout launch FILE [name:=value ...]`: run the graph; returns the exit code.

    join: run the nodes in the graph whose router is at `ROLLOUT_ROUTER` (or host it there),
    instead of a graph of their own.
    """
    from rollout import runtime

    module = load_launch_file(find_launch_file(file))
    args: list[Arg] = list(module.ARGS)
    if any(t in ("-h", "--help", "-s", "--show-args") for t in tokens):
        print(f"Arguments (name:=value):\n{describe_arguments(args)}")
        return 0
    values = parse_launch_arguments(args, tokens)
    specs = list(module.nodes(values))
    launcher = Launcher(specs)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, launcher.request_stop)
    if runtime.backend() == "zenoh":
        endpoint, joined = _open_graph(join)
        how = "joined the running graph" if joined else "hosted for this launch"
        launcher.say("launch", f"graph: {endpoint} ({how}; ROLLOUT_ROUTER={endpoint} rollout node list)")
    else:
        runtime.init([], signals=False)
    try:
        return launcher.run()
    finally:
        runtime.close()
