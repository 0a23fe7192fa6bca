"""The command line guides a newcomer: help with examples, listings, "did you mean", bag verbs,
and no success claimed after a failure."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rollout import RolloutRecorder, make_env
from test_launch_cli import one_line_error

ROLLOUT = [sys.executable, "-m", "rollout.cli"]


def run(*args: str, cwd: Path | None = None, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ROLLOUT, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small humanoid recording with random actions: episodes end within the 60 steps."""
    out = tmp_path_factory.mktemp("cli") / "rollouts" / "rollout_1"
    return RolloutRecorder(make_env("humanoid", num_envs=4, seed=0), max_steps=60, out=out).run("random")


def test_bare_rollout_prints_help_with_examples_and_exits_0() -> None:
    p = run()
    assert p.returncode == 0, p.stderr
    assert "usage: rollout" in p.stdout and "examples:" in p.stdout
    for command in ("launch", "run", "node", "topic", "bag"):
        assert re.search(rf"^\s+{command}\s+\S", p.stdout, re.M), command
    assert "rollout launch record.launch.py" in p.stdout and "policy:=demo" in p.stdout


def test_launch_help_lists_every_launch_file_with_a_line() -> None:
    p = run("launch", "--help")
    assert p.returncode == 0
    assert re.search(r"^\s+record\.launch\.py\s+Record a rollout", p.stdout, re.M), p.stdout
    assert re.search(r"^\s+replay\.launch\.py\s+Replay a recorded bag", p.stdout, re.M), p.stdout


def test_run_help_lists_every_node_with_a_line() -> None:
    from rollout.cli import node_names

    p = run("run", "--help")
    assert p.returncode == 0
    for name in node_names():
        assert re.search(rf"^\s+{name}\s+\w", p.stdout, re.M), name
    assert {"sim", "recorder", "replay", "to_npz"} <= set(node_names())


def test_bare_launch_run_and_bag_list_what_they_can_run() -> None:
    launch, node, bag = run("launch"), run("run"), run("bag")
    assert bag.returncode == 0 and "to-npz" in bag.stdout
    assert launch.returncode == 0 and "record.launch.py" in launch.stdout
    assert node.returncode == 0 and re.search(r"^\s+sim\s+\w", node.stdout, re.M)


def test_bag_latest_is_documented_where_it_is_accepted() -> None:
    p = run("launch", "replay.launch.py", "--show-args")
    assert p.returncode == 0
    assert re.search(r"bag:=.*latest", p.stdout), p.stdout
    node = run("run", "replay", "--help")
    assert node.returncode == 0 and re.search(r"bag \(str.*\n.*latest", node.stdout), node.stdout
    for verb in ("info", "check", "to-npz"):
        assert "latest" in run("bag", verb, "--help").stdout, verb


@pytest.mark.parametrize(
    "args, expected",
    [
        (["launch", "record.launch.py", "num_env:=4"], "unknown launch argument 'num_env' (did you mean 'num_envs'?)"),
        (["run", "sim", "--ros-args", "-p", "num_env:=3"], "unknown parameter 'num_env' (did you mean 'num_envs'?)"),
        (["run", "simm"], "no node 'simm' (did you mean 'sim'?)"),
        (["launch", "recrd.launch.py"], "no launch file 'recrd.launch.py' (did you mean 'record.launch.py'?)"),
    ],
)
def test_misspelt_names_get_a_did_you_mean(args: list[str], expected: str) -> None:
    assert expected in one_line_error(run(*args))


def test_no_suggestion_when_nothing_is_close() -> None:
    line = one_line_error(run("launch", "record.launch.py", "colour:=3"))
    assert "unknown launch argument 'colour'" in line and "did you mean" not in line


def test_bag_help_lists_the_verbs() -> None:
    p = run("bag", "--help")
    assert p.returncode == 0
    for verb in ("info", "check", "repair", "to-npz", "from-npz", "share"):
        assert re.search(rf"^\s+{verb}\s+\w", p.stdout, re.M), verb


def test_bag_verbs_each_live_in_their_own_module_with_add_arguments_and_main() -> None:
    import argparse

    from rollout.bag_cli import VERBS, verb_module

    for verb in VERBS:
        mod = verb_module(verb)
        p = argparse.ArgumentParser()
        mod.add_arguments(p)
        assert callable(mod.main), verb


def test_bag_info_summarises_the_rollout(bag: Path) -> None:
    from rollout.sim import run_steps
    from rollout.policy import make_policy

    p = run("bag", "info", str(bag))
    assert p.returncode == 0, p.stderr
    assert "Topic information:" in p.stdout  # the ros2 bag info part is still there
    assert "Rollout:           mujoco:Humanoid-v5, 4 envs, seed 0" in p.stdout
    assert "Policy:            random" in p.stdout
    assert "Steps:             60 (0.90 s of sim time" in p.stdout
    # the same run, stepped again without any bag: its episodes are what the summary reports
    env = make_env("humanoid", num_envs=4, seed=0)
    policy = make_policy("random", obs_dim=348, act_dim=17, action_low=env.info.action_low, action_high=env.info.action_high)
    returns = np.concatenate([rec.episodes.returns for rec in run_steps(env, policy, seed=0, steps=60)])
    assert returns.size > 0
    assert f"Episodes ended:    {returns.size} " in p.stdout
    assert f"Return:            mean {returns.mean():.2f}, min {returns.min():.2f}, max {returns.max():.2f}" in p.stdout
    assert re.search(r"Reward per step:   reward_survive [\d.]+ \| reward_forward -?[\d.]+", p.stdout)


def test_bag_info_and_to_npz_take_latest(bag: Path, tmp_path: Path) -> None:
    cwd = bag.parents[1]
    p = run("bag", "info", "latest", cwd=cwd)
    assert p.returncode == 0 and "Rollout:" in p.stdout, p.stderr
    p = run("bag", "to-npz", "latest", "-o", str(tmp_path / "a.npz"), cwd=cwd)
    assert p.returncode == 0, p.stderr
    assert np.load(tmp_path / "a.npz")["obs"].shape == (60, 4, 348)


def test_bag_info_latest_without_recordings_is_one_line(tmp_path: Path) -> None:
    assert "found no rollout recording" in one_line_error(run("bag", "info", "latest", cwd=tmp_path))


def test_to_npz_still_runs_as_a_node_and_as_a_verb(bag: Path, tmp_path: Path) -> None:
    node = subprocess.run([sys.executable, "-m", "rollout.nodes.to_npz", str(bag), "-o", str(tmp_path / "n.npz")],
                          capture_output=True, text=True, timeout=120)  # what `ros2 run rollout to_npz` runs
    assert node.returncode == 0, node.stderr
    verb = run("bag", "to-npz", str(bag), "-o", str(tmp_path / "v.npz"))
    assert verb.returncode == 0, verb.stderr
    a, b = np.load(tmp_path / "n.npz"), np.load(tmp_path / "v.npz")
    assert np.array_equal(a["obs"], b["obs"]) and np.array_equal(a["rew"], b["rew"])
    assert "did you mean 'reward_terms'" in one_line_error(run("bag", "to-npz", str(bag), "--extra", "reward_term"))


def test_from_npz_verb_makes_a_bag_that_bag_check_passes(bag: Path, tmp_path: Path) -> None:
    assert run("bag", "to-npz", str(bag), "-o", str(tmp_path / "r.npz")).returncode == 0
    p = run("bag", "from-npz", str(tmp_path / "r.npz"), "-o", str(tmp_path / "back"), "--no-info")
    assert p.returncode == 0, p.stderr
    check = run("bag", "check", str(tmp_path / "back"))
    assert check.returncode == 0 and "ok" in check.stdout, check.stdout + check.stderr


def test_bag_check_finds_a_cut_file_and_repair_makes_it_whole(bag: Path, tmp_path: Path) -> None:
    ok = run("bag", "check", str(bag))
    assert ok.returncode == 0 and re.search(r"\d+ messages readable, ok", ok.stdout), ok.stdout
    mcap = next(bag.glob("*.mcap"))
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(mcap.read_bytes()[: mcap.stat().st_size - 200])  # the summary and footer lost, as when killed
    bad = run("bag", "check", str(cut))
    assert bad.returncode == 1 and "no footer" in bad.stdout, bad.stdout + bad.stderr
    fixed = run("bag", "repair", str(cut), "-o", str(tmp_path / "fixed.mcap"))
    assert fixed.returncode == 0, fixed.stderr
    assert run("bag", "check", str(tmp_path / "fixed.mcap")).returncode == 0


def test_a_failed_launch_ends_with_the_failure_and_no_invitation_after_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = run("launch", "record.launch.py", "policy:=/no/such.pt2", "view:=true", f"port:={port}", "steps:=5",
            timeout=180)
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert lines[-1].startswith("[launch] failed: sim") and "does not exist" in lines[-1], p.stdout
    after = lines[next(i for i, line in enumerate(lines) if "sim exited with code" in line):]
    assert not any("open http" in line for line in after), p.stdout


def test_record_launch_defaults_to_the_demo_policy_on_the_humanoid_only() -> None:
    from rollout.launching import find_launch_file, load_launch_file, parse_launch_arguments

    module = load_launch_file(find_launch_file("record.launch.py"))

    def sim_policy(*tokens: str) -> str:
        specs = module.nodes(parse_launch_arguments(module.ARGS, list(tokens)))
        return next(s for s in specs if s.executable == "sim").params["policy"]

    assert sim_policy() == "demo"
    assert sim_policy("env:=synthetic") == "random"
    assert sim_policy("env:=synthetic", "policy:=zero") == "zero"
    assert sim_policy("policy:=random") == "random"
