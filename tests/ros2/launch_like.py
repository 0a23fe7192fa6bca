"""Start a launch file's graph from a colcon install the way launch_ros does (upstream launch is
not on PyPI): each node is `install/rollout/lib/rollout/<executable> --ros-args -r __node:=NAME
--params-file FILE`, the file being the YAML launch_ros writes for `Node(parameters=[{...}])`
(the values `ros_launch_description` hands it); when a `shutdown_on_exit` node ends, the others
get SIGINT, then SIGTERM after their `sigterm_timeout`, as launch does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from rollout.launching.description import NodeSpec, typed_values
from rollout.launching.runner import load_launch_file


def sourced_env(ws: Path, **extra: str) -> dict[str, str]:
    """The environment after `. WS/install/setup.bash` (ROS 2 selected: ROS_DISTRO set, as by /opt/ros/jazzy)."""
    out = subprocess.run(
        ["bash", "-c", f". {ws / 'install' / 'setup.bash'} && env -0"], capture_output=True, check=True
    ).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    env.update(extra)
    env.setdefault("ROS_DISTRO", "jazzy")
    return env


def executable(ws: Path, name: str) -> Path:
    return ws / "install" / "rollout" / "lib" / "rollout" / name


def specs(launch_file: Path, **given: str) -> list[NodeSpec]:
    module = load_launch_file(launch_file)
    return list(module.nodes(typed_values(module.ARGS, given)))


@dataclass
class Graph:
    procs: list[tuple[NodeSpec, subprocess.Popen[str]]]
    logs: dict[str, Path]

    def output(self, name: str) -> str:
        return self.logs[name].read_text()

    def wait(self, timeout: float) -> dict[str, int]:
        """Until a shutdown_on_exit node ends (or all do); then stop the rest as launch does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = [s for s, p in self.procs if p.poll() is not None]
            if any(s.shutdown_on_exit for s in ended) or len(ended) == len(self.procs):
                break
            time.sleep(0.1)
        self.stop()
        return {s.node_name: p.returncode for s, p in self.procs}

    def stop(self) -> None:
        running = [(s, p) for s, p in reversed(self.procs) if p.poll() is None]
        for _, p in running:
            p.send_signal(signal.SIGINT)
        for s, p in running:
            try:
                p.wait(s.stop_timeout)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def start(ws: Path, launch_file: Path, env: dict[str, str], tmp: Path, **given: str) -> Graph:
    procs, logs = [], {}
    for spec in specs(launch_file, **given):
        params = tmp / f"launch_params_{spec.node_name}.yaml"
        with open(params, "w") as f:
            yaml.dump({f"/{spec.node_name}": {"ros__parameters": spec.ros_parameters()}}, f, default_flow_style=False)
        cmd = [str(executable(ws, spec.executable)), *spec.arguments,
               "--ros-args", "-r", f"__node:={spec.node_name}", "--params-file", str(params)]
        logs[spec.node_name] = tmp / f"{spec.node_name}.log"
        log = open(logs[spec.node_name], "w")
        procs.append((spec, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, text=True)))
    return Graph(procs, logs)
