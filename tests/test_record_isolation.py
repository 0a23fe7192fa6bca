"""Recordings on one machine never mix: each `rollout launch` is a graph of its own, a recorder
says when a second publisher joins its topics, and a killed launcher takes its nodes with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rollout.bag import Bag

ROLLOUT = [sys.executable, "-m", "rollout.cli"]


def start_launch(out: Path, num_envs: int, steps: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ROLLOUT, "launch", *extra, "record.launch.py", "env:=synthetic", f"num_envs:={num_envs}",
         f"steps:={steps}", "realtime:=true", f"out:={out}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def own_steps_only(bag_path: Path, num_envs: int, steps: int) -> None:
    with Bag(bag_path) as bag:
        state = bag.read_arrays("/rollout/state", ["step", "num_envs"])
        action = bag.read_arrays("/rollout/action", ["step", "num_envs"])
        robots = [bag.decode("/rollout/robot", i).num_envs for i in range(bag.count("/rollout/robot"))]
    assert robots == [num_envs]
    for arrays in (state, action):
        assert set(arrays["num_envs"].tolist()) == {num_envs}  # not one foreign message
        np.testing.assert_array_equal(arrays["step"], np.arange(steps))  # complete, in order, once each


def test_two_record_launches_5_s_apart_each_record_only_their_own_sim(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    first = start_launch(a, 3, 700)  # 10.5 s of sim time at 15 ms per step
    try:
        time.sleep(5)
        second = start_launch(b, 5, 300)  # runs while the first is still stepping
        out_b = second.communicate(timeout=90)[0]
        out_a = first.communicate(timeout=90)[0]
    finally:
        for p in (first, locals().get("second")):
            if p is not None and p.poll() is None:
                p.kill()
    assert first.returncode == 0, out_a
    assert second.returncode == 0, out_b
    ports = [re.search(r"graph: tcp/127\.0\.0\.1:(\d+)", out).group(1) for out in (out_a, out_b)]  # type: ignore[union-attr]
    assert ports[0] != ports[1], (out_a, out_b)
    for out in (out_a, out_b):
        assert "no gaps" in out and "second publisher" not in out and "mixed:" not in out, out
    own_steps_only(a, 3, 700)
    own_steps_only(b, 5, 300)
    for bag, n in ((a, 3), (b, 5)):
        npz = tmp_path / f"{bag.name}.npz"
        p = subprocess.run([*ROLLOUT, "run", "to_npz", str(bag), "-o", str(npz)], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
        assert p.returncode == 0, p.stderr
        with np.load(npz, allow_pickle=False) as z:
            assert z["obs"].shape[:2] == (700 if n == 3 else 300, n)


def test_a_second_sim_in_the_same_graph_is_reported_by_the_recorder(tmp_path: Path) -> None:
    launch = start_launch(tmp_path / "bag", 3, 400)
    sim = None
    try:
        graph = ""
        assert launch.stdout is not None
        for line in launch.stdout:
            graph = graph or (m.group(1) if (m := re.search(r"graph: (tcp/\S+)", line)) else "")
            if "[sim]" in line and "steps" in line:
                break
        env = dict(os.environ, ROLLOUT_ROUTER=graph)  # on purpose: the same graph
        sim = subprocess.Popen(
            [*ROLLOUT, "run", "sim", "--ros-args", "-p", "env:=synthetic", "-p", "num_envs:=2", "-p", "steps:=50",
             "-p", "realtime:=true"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        out = launch.communicate(timeout=60)[0]
    finally:
        for p in (launch, sim):
            if p is not None and p.poll() is None:
                p.kill()
    assert re.search(r"\[recorder\].*a second publisher sends on /rollout/state", out), out
    assert re.search(r"\[recorder\]\s+mixed: /rollout/state came from 2 publishers", out), out


@pytest.mark.parametrize("run", range(3))
def test_sigkill_of_the_launcher_ends_its_nodes_within_2_s(tmp_path: Path, run: int) -> None:
    launch = start_launch(tmp_path / "bag", 4, 0)
    pids: list[int] = []
    assert launch.stdout is not None
    subscribed = stepping = False
    for line in launch.stdout:
        if m := re.search(r"started \w+ \(pid (\d+)\)", line):
            pids.append(int(m.group(1)))
        subscribed = subscribed or ("[recorder]" in line and "recording /rollout/state" in line)
        stepping = stepping or ("[sim]" in line and "steps" in line)
        if subscribed and stepping:
            break
    assert len(pids) == 2
    # the sim is stepping; kill at different moments, each after the recorder's first flush (every
    # 1 s): what came since the last flush is the most a SIGKILL may take
    time.sleep(1.1 + 0.4 * run)
    launch.kill()
    t0 = time.monotonic()
    launch.wait(5)
    alive = list(pids)
    while alive and time.monotonic() - t0 < 5:
        alive = [pid for pid in alive if _running(pid)]
        time.sleep(0.02)
    elapsed = time.monotonic() - t0
    assert not alive and elapsed < 2.0, f"nodes {[_describe(p) for p in alive]} still running after {elapsed:.2f} s"
    with Bag(tmp_path / "bag", recover=True) as bag:  # the recorder kept what it had
        assert bag.count("/rollout/state") > 0


def _running(pid: int) -> bool:
    """Alive and not a zombie (the nodes are not our children: nobody reaps them at once)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _describe(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:120]
        state = [line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(("State", "PPid"))]
        return f"{pid} {cmd} {state}"
    except OSError:
        return str(pid)
