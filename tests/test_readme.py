"""The README runs as written: every shell command and Python snippet, in order, in a fresh folder.

Shell commands run through this interpreter's `rollout` (`python -m rollout.cli`), in one temporary
working directory, so `bag:=latest` finds what the commands before it recorded. Commands that start
a viewer also get `port:=` a free port (parallel test runs share the machine); commands that run
until Ctrl-C get a SIGINT once they are up and must then exit 0. The install and test commands are
the ones `.ci/run` executes. The sections in NOT_RUN_HERE have tests of their own: tests/test_ros2_graph.py (in CI, with
ROS 2), tests/test_protomotions_real.py (where ProtoMotions is installed), tests/test_across_machines.py.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from ports import free_port

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
# sections whose commands need what CI has not: ROS 2 sourced, a ProtoMotions checkpoint, other hosts
NOT_RUN_HERE = ("With ROS 2", "ProtoMotions", "Across machines")

# what a command prints once it is up, for the commands that run until Ctrl-C
UNTIL_CTRL_C = {"loop:=true": r"\[viser_bridge\] .*open http", "view:=true": r"\[sim\] .*done: "}
# handled by CI, not here: the install, and the test suite itself
RUN_BY_CI = ("pip install", "python -m pytest")


def blocks(lang: str) -> list[tuple[str, str]]:
    """(section heading, code) of every ```lang block, in order."""
    found = []
    section = ""
    for m in re.finditer(r"^(#+ [^\n]*)$|^```(\w+)\n(.*?)^```", README, re.M | re.S):
        if m.group(1):
            section = m.group(1).lstrip("# ").strip()
        elif m.group(2) == lang:
            found.append((section, m.group(3)))
    return found


def shell_commands() -> list[str]:
    return [
        line.split("  #")[0].strip()
        for section, code in blocks("bash")
        if section not in NOT_RUN_HERE
        for line in code.splitlines()
        if line.strip()
    ]


def run_command(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(line)
    assert argv[0] == "rollout", line
    argv = [sys.executable, "-m", "rollout.cli", *argv[1:]]
    if "launch" in argv and ("view:=true" in argv or ("replay.launch.py" in argv and not any(a.startswith("video:=") for a in argv))):
        argv.append(f"port:={free_port()}")
    ready = next((pattern for key, pattern in UNTIL_CTRL_C.items() if key in line), None)
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 240
    for out in proc.stdout:  # type: ignore[union-attr]
        lines.append(out)
        if ready and re.search(ready, out):
            time.sleep(2.0)  # let it play a little
            proc.send_signal(signal.SIGINT)
            ready = None
        if time.monotonic() > deadline:
            proc.kill()
            break
    code = proc.wait(60)
    return subprocess.CompletedProcess(argv, code, "".join(lines), "")


def test_readme_shell_commands_run_as_written(tmp_path: Path) -> None:
    commands = shell_commands()
    assert any("record.launch.py" in c and "policy:=demo" in c for c in commands)
    ci = (ROOT / ".ci" / "run").read_text()
    for line in commands:
        if line.startswith(RUN_BY_CI):
            assert f"python -m {line}" in ci or line in ci, f"{line!r} is not what .ci/run executes"
            continue
        p = run_command(line, tmp_path)
        assert p.returncode == 0, f"{line}\n{p.stdout[-3000:]}"
        assert "Traceback" not in p.stdout and " error: " not in p.stdout, f"{line}\n{p.stdout[-3000:]}"
    # the main command recorded humanoids that walk forward, and the viewer was up
    from rollout.bag.summary import rollout_summary
    from rollout.policy import sha256_file

    main = next(c for c in commands if "view:=true" in c)
    bags = sorted((tmp_path / "rollouts").iterdir())
    first = rollout_summary(bags[0])
    assert first is not None and first.steps == 1000 and first.num_envs == 16, main
    assert first.policy == "demo" and first.policy_sha256 == sha256_file(ROOT / "rollout" / "data" / "humanoid_walk.pt2")
    assert first.term_means["reward_forward"] / 1.25 > 0.5  # walking: mean forward speed in m/s
    assert (tmp_path / "run.mp4").stat().st_size > 10_000
    assert np.load(tmp_path / "run.npz")["obs"].shape[1:] == (64, 348)


def test_readme_python_snippets_run_twice_in_a_row(tmp_path: Path) -> None:
    from rollout import RolloutRecorder, make_env

    snippets = [code for section, code in blocks("python") if section not in NOT_RUN_HERE]
    assert snippets
    # the Bags section reads step 500 of "rollouts/run1": record one there first, as a user would have
    RolloutRecorder(make_env("humanoid", num_envs=1), max_steps=501, out=tmp_path / "rollouts" / "run1").run("demo")
    for code in snippets:
        for attempt in range(2):
            p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, f"attempt {attempt + 1}:\n{code}\n{p.stderr[-3000:]}"
    assert (tmp_path / "clip.mp4").stat().st_size > 1000
    assert len(list((tmp_path / "rollouts").glob("rollout_*"))) == 2  # one new bag per run
