"""The launcher and the `rollout` command: parameters, Ctrl-C, introspection, and user mistakes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollout import runtime
from rollout.bag import Bag

ROLLOUT = [sys.executable, "-m", "rollout.cli"]


def run(*args: str, timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ROLLOUT, *args], capture_output=True, text=True, timeout=timeout, **kw)


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode != 0
    assert "Traceback" not in p.stderr, p.stderr
    lines = [line for line in p.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_launch_argument_sets_node_parameters(tmp_path: Path) -> None:
    out = tmp_path / "bag"
    p = run("launch", "record.launch.py", "env:=synthetic", "num_envs:=3", "steps:=7", f"out:={out}")
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"\[recorder\] bag: .*bag", p.stdout)
    with Bag(out) as bag:
        robot = bag.decode("/rollout/robot", 0)
        assert robot.num_envs == 3 and robot.env.startswith("synthetic")
        assert bag.count("/rollout/state") == 7


def test_command_line_parameter_override_reaches_the_node() -> None:
    runtime.init([], signals=False)
    try:
        node = runtime.Node("test_listener")
        got: list[object] = []
        node.create_subscription("rollout_msgs/msg/State", "/rollout/state", got.append, 100)
        sim = subprocess.Popen(
            [*ROLLOUT, "run", "sim", "--ros-args", "-p", "env:=synthetic", "-p", "num_envs:=5", "-p", "steps:=3",
             "-p", "wait_for_subscribers:=1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            runtime.spin_once(timeout_sec=0.1)
        assert sim.wait(30) == 0, sim.stderr.read()  # type: ignore[union-attr]
        assert [m.num_envs for m in got] == [5, 5, 5]
        assert [m.step for m in got] == [0, 1, 2]
    finally:
        runtime.close()


def test_ctrl_c_stops_every_node_within_2_s(tmp_path: Path) -> None:
    launch = subprocess.Popen(
        [*ROLLOUT, "launch", "record.launch.py", "env:=synthetic", "num_envs:=4", "steps:=0", "realtime:=true",
         f"out:={tmp_path / 'bag'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    pids: list[int] = []
    for line in launch.stdout:  # type: ignore[union-attr]
        if m := re.search(r"started \w+ \(pid (\d+)\)", line):
            pids.append(int(m.group(1)))
        if "[sim]" in line and "steps" in line:  # the sim is stepping
            break
    assert len(pids) == 2
    time.sleep(0.5)
    t0 = time.monotonic()
    launch.send_signal(signal.SIGINT)
    code = launch.wait(10)
    elapsed = time.monotonic() - t0
    rest = launch.stdout.read()  # type: ignore[union-attr]
    assert code == 0, rest
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert Bag(tmp_path / "bag").count("/rollout/state") > 0  # the recorder closed its bag


def test_topic_list_echo_and_node_list_see_a_running_graph(tmp_path: Path) -> None:
    sim = subprocess.Popen(
        [*ROLLOUT, "run", "sim", "--ros-args", "-p", "env:=synthetic", "-p", "num_envs:=2", "-p", "realtime:=true"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1.5)
        nodes = run("node", "list")
        assert nodes.stdout.split() == ["/sim"], nodes.stdout + nodes.stderr
        topics = run("topic", "list", "-t")
        assert "/rollout/state [rollout_msgs/msg/State]" in topics.stdout
        assert "/tf [tf2_msgs/msg/TFMessage]" not in topics.stdout  # the synthetic env has no model to draw
        echo = run("topic", "echo", "/rollout/reward_terms", "--once")
        assert echo.returncode == 0, echo.stderr
        assert re.search(r"^step: \d+$", echo.stdout, re.M) and "total_mean:" in echo.stdout
        robot = run("topic", "echo", "/rollout/robot", "--once")  # latched: arrives although published long ago
        assert "num_envs: 2" in robot.stdout
    finally:
        sim.send_signal(signal.SIGINT)
        assert sim.wait(10) == 0


def test_topic_hz_reports_the_rate() -> None:
    sim = subprocess.Popen(
        [*ROLLOUT, "run", "sim", "--ros-args", "-p", "env:=synthetic", "-p", "num_envs:=2", "-p", "realtime:=true"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    hz = subprocess.Popen([*ROLLOUT, "topic", "hz", "/rollout/state"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(4)
    finally:
        hz.send_signal(signal.SIGINT)
        out = hz.communicate(10)[0]
        sim.send_signal(signal.SIGINT)
        sim.wait(10)
    rates = [float(r) for r in re.findall(r"average rate: ([\d.]+)", out)]
    assert rates and 45 < rates[-1] < 80, out  # realtime at the synthetic env's dt of 15 ms: 66.7 Hz


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "no_such_node"], "no node 'no_such_node'"),
        (["launch", "no_such.launch.py"], "no launch file 'no_such.launch.py'"),
        (["launch", "record.launch.py", "num_envs=3"], "malformed launch argument 'num_envs=3'"),
        (["launch", "record.launch.py", "speed:=3"], "unknown launch argument 'speed'"),
        (["run", "sim", "--ros-args", "-p", "num_env:=3"], "unknown parameter 'num_env'"),
        (["run", "sim", "--ros-args", "-p", "num_envs:=many"], "num_envs"),
        (["run", "sim", "--ros-args", "-p", "env:=nosuchmodule:make"], "cannot import env module nosuchmodule"),
        (["run", "sim", "--ros-args", "-p", "policy:=/no/such.pt2"], "does not exist"),
    ],
)
def test_user_mistakes_end_in_one_line(args: list[str], expected: str) -> None:
    assert expected in one_line_error(run(*args))


def test_router_port_taken_by_another_program_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:  # something that accepts connections but does not speak zenoh
        s.bind(("127.0.0.1", 0))
        s.listen()
        env = dict(os.environ, ROLLOUT_ROUTER=f"tcp/127.0.0.1:{s.getsockname()[1]}")
        p = run("run", "sim", "--ros-args", "-p", "env:=synthetic", timeout=60, env=env)
    assert "cannot join the zenoh router" in one_line_error(p)
