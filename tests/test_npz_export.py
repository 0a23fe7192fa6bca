"""to_npz: a file that plain numpy loads with exactly the documented keys, shapes, dtypes and
info dicts, matching what was recorded; subsets, ranges and extras; clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rollout.errors import BagError
from rollout.export import bag_to_npz, read_rollout
from rollout.export.synthetic import Recorded, write_synthetic_rollout

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = ["obs", "act", "rew", "info", "base_pos", "base_quat"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Recorded]:
    path = tmp_path_factory.mktemp("npz") / "run"
    rec = write_synthetic_rollout(path, steps=40, num_envs=6, obs_dim=13, act_dim=4, chunk_size=5000, first_step=7)
    return path, rec


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "nodes" / f"{tool}.py"), *args], capture_output=True, text=True, env=env)


def test_plain_numpy_sees_exactly_the_documented_schema(recorded: tuple[Path, Recorded], tmp_path: Path) -> None:
    bag, rec = recorded
    out = tmp_path / "run.npz"
    proc = run_tool("to_npz", str(bag), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}: 40 steps x 6 envs" in proc.stdout

    z = np.load(out, allow_pickle=True)
    assert z.files == DOCUMENTED
    T, N = 40, 6
    expect = {"obs": (T, N, 13), "act": (T, N, 4), "rew": (T, N), "base_pos": (T, N, 3), "base_quat": (T, N, 4)}
    for key, shape in expect.items():
        assert z[key].shape == shape and z[key].dtype == np.float32, key
    assert np.array_equal(z["obs"], rec.obs)
    assert np.array_equal(z["act"], rec.act)
    assert np.array_equal(z["rew"], rec.rew)
    assert np.array_equal(z["base_pos"], rec.base_pos)
    assert np.array_equal(z["base_quat"], rec.base_quat)  # x, y, z, w as recorded
    info = z["info"]
    assert info.shape == (T,) and info.dtype == object
    for t in range(T):
        d = info[t]
        assert set(d) == {"reward_terms", "step", "sim_time", "done", "terminated", "truncated", "end_reasons"}
        assert d["step"] == rec.steps[t] and isinstance(d["step"], int)
        assert d["sim_time"] == pytest.approx(rec.sim_time[t]) and isinstance(d["sim_time"], float)
        assert list(d["reward_terms"]) == list(rec.terms)
        for name, values in rec.terms.items():
            assert d["reward_terms"][name].dtype == np.float32 and d["reward_terms"][name].shape == (N,)
            assert np.array_equal(d["reward_terms"][name], values[t])
        for flag in ("done", "terminated", "truncated"):
            assert d[flag].dtype == bool and np.array_equal(d[flag], getattr(rec, flag)[t])
        ended = np.flatnonzero(rec.done[t])  # why, per env that ended (the humanoid names no reasons)
        assert d["end_reasons"] == {int(k): "terminated" if rec.terminated[t, k] else "truncated" for k in ended}


def test_default_output_is_next_to_the_bag_and_not_overwritten(recorded: tuple[Path, Recorded], tmp_path: Path) -> None:
    src, _ = recorded
    bag = tmp_path / "copy"
    bag.mkdir()
    for f in src.iterdir():
        (bag / f.name).write_bytes(f.read_bytes())
    w = bag_to_npz(bag)
    assert w.path == tmp_path / "copy.npz" and w.path.is_file()
    assert not list(tmp_path.glob("*.partial"))
    proc = run_tool("to_npz", str(bag))
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "already exists; pass --force" in proc.stderr
    assert run_tool("to_npz", str(bag), "--force", "--no-progress").returncode == 0


def test_env_subset_and_step_and_time_ranges(recorded: tuple[Path, Recorded], tmp_path: Path) -> None:
    bag, rec = recorded
    out = tmp_path / "sub.npz"
    assert run_tool("to_npz", str(bag), "-o", str(out), "--envs", "4,0-1", "--steps", "10:30").returncode == 0
    z = np.load(out, allow_pickle=True)
    rows, cols = slice(3, 23), [4, 0, 1]
    assert np.array_equal(z["obs"], rec.obs[rows][:, cols])
    assert np.array_equal(z["base_quat"], rec.base_quat[rows][:, cols])
    assert z["info"][0]["step"] == 10 and z["info"][-1]["step"] == 29
    assert np.array_equal(z["info"][5]["reward_terms"]["reward_ctrl"], rec.terms["reward_ctrl"][8, cols])
    assert np.array_equal(z["info"][5]["done"], rec.done[8, cols])

    r = read_rollout(bag, sim_time=(0.2925, 0.4425))  # steps 20..29 (sim time = step * 0.015)
    assert r.steps.tolist() == list(range(20, 30))
    assert np.array_equal(r.arrays["act"], rec.act[13:23])


def test_extras_never_change_the_documented_keys(recorded: tuple[Path, Recorded], tmp_path: Path) -> None:
    bag, rec = recorded
    plain = bag_to_npz(bag, tmp_path / "plain.npz")
    full = bag_to_npz(bag, tmp_path / "full.npz", extras=["joint_pos", "body_poses", "reward_terms", "flags", "robot"])
    a, b = np.load(plain.path, allow_pickle=True), np.load(full.path, allow_pickle=True)
    assert b.files[:6] == DOCUMENTED
    for key in ("obs", "act", "rew", "base_pos", "base_quat"):
        assert np.array_equal(a[key], b[key])
    assert np.array_equal(b["joint_pos"], rec.joint_pos) and b["joint_pos"].dtype == np.float32
    assert b["body_poses"].shape == (40, 6, 3, 7) and np.array_equal(b["body_poses"], rec.body_poses)
    assert np.array_equal(b["term_reward_forward"], rec.terms["reward_forward"])
    assert b["step"].dtype == np.int64 and np.array_equal(b["step"], rec.steps)
    assert np.array_equal(b["sim_time"], rec.sim_time) and np.array_equal(b["done"], rec.done)
    assert str(b["robot_model"]) == "<mujoco/>" and b["joint_names"].tolist() == [f"joint{j}" for j in range(5)]
    assert float(b["dt"]) == pytest.approx(0.015)
    # without pickle, every extra key loads (only info needs pickle)
    safe = np.load(full.path, allow_pickle=False)
    for key in safe.files:
        if key != "info":
            safe[key]


def test_steps_missing_from_a_topic_are_dropped_not_misaligned(tmp_path: Path) -> None:
    rec = write_synthetic_rollout(tmp_path / "gaps", steps=20, drop={"/rollout/action": [3], "/rollout/reward_terms": [3, 11]})
    r = read_rollout(tmp_path / "gaps")
    keep = [t for t in range(20) if t not in (3, 11)]
    assert r.steps.tolist() == keep
    assert np.array_equal(r.arrays["obs"], rec.obs[keep]) and np.array_equal(r.arrays["act"], rec.act[keep])
    assert r.notes == ["2 steps are missing from some of the three topics and were skipped"]


def test_compressed_npz_holds_the_same(recorded: tuple[Path, Recorded], tmp_path: Path) -> None:
    bag, rec = recorded
    w = bag_to_npz(bag, tmp_path / "c.npz", compressed=True)
    assert np.array_equal(np.load(w.path)["obs"], rec.obs)


def test_user_mistakes_end_in_one_line(recorded: tuple[Path, Recorded], tmp_path: Path) -> None:
    bag, _ = recorded
    from rollout.bag import BagWriter

    with BagWriter(tmp_path / "other.mcap") as w:
        w.add_topic("/chatter", "std_msgs/msg/String")
    cases = [
        ((str(tmp_path / "nope"),), "does not exist"),
        ((str(tmp_path / "other.mcap"),), "no rollout topics"),
        ((str(bag), "-o", str(tmp_path / "x.npz"), "--envs", "9"), "between 0 and 5"),
        ((str(bag), "-o", str(tmp_path / "x.npz"), "--envs", "a-b"), "--envs takes"),
        ((str(bag), "-o", str(tmp_path / "x.npz"), "--steps", "1000:"), "no control step"),
        ((str(bag), "-o", str(tmp_path / "x.npz"), "--extra", "video"), "unknown --extra"),
    ]
    for args, message in cases:
        proc = run_tool("to_npz", *args)
        assert proc.returncode == 2, args
        assert proc.stderr.startswith("to_npz: error: ") and message in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1
    with pytest.raises(BagError, match="needs all three"):
        from rollout.bag import BagWriter as W

        with W(tmp_path / "half.mcap") as w:
            w.add_topic("/rollout/state", "rollout_msgs/msg/State")
        read_rollout(tmp_path / "half.mcap")
