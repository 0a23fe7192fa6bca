"""record -> bag -> npz -> bag -> npz gives identical arrays and info; from_npz takes NPZ files
from other tools, and unpickles `info` only when told to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from rollout.bag import Bag
from rollout.errors import BagError
from rollout.export import EXTRAS, bag_to_npz, load_npz, npz_to_bag
from rollout.export.from_npz import BASE_MODEL
from rollout.export.synthetic import write_synthetic_rollout

ROOT = Path(__file__).resolve().parents[1]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) and a.dtype == object:
        return b.dtype == object and a.shape == b.shape and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "nodes" / f"{tool}.py"), *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("extras", [(), EXTRAS])
def test_bag_npz_bag_npz_is_identical(tmp_path: Path, extras: tuple[str, ...]) -> None:
    write_synthetic_rollout(tmp_path / "rec", steps=25, num_envs=3, first_step=40, compression="lz4")
    first = bag_to_npz(tmp_path / "rec", tmp_path / "one.npz", extras=extras)
    bag2 = npz_to_bag(first.path, tmp_path / "rebuilt", allow_pickle=True, compression="zstd")
    second = bag_to_npz(bag2, tmp_path / "two.npz", extras=extras)
    a, b = np.load(first.path, allow_pickle=True), np.load(second.path, allow_pickle=True)
    assert a.files == b.files
    for key in a.files:
        assert same(a[key], b[key]), key
    with AnyReader([bag2]) as reader:  # the rebuilt bag is a valid rosbag2 bag
        assert {c.topic for c in reader.connections} >= {"/rollout/state", "/rollout/action", "/rollout/reward_terms", "/rollout/robot"}


def test_info_is_unpickled_only_on_request(tmp_path: Path) -> None:
    write_synthetic_rollout(tmp_path / "rec", steps=5)
    npz = bag_to_npz(tmp_path / "rec").path
    with pytest.raises(BagError, match=r"pickled object array.*--allow-pickle.*--no-info"):
        load_npz(npz)
    proc = run_tool("from_npz", str(npz), "-o", str(tmp_path / "refused"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "from_npz: error:" in proc.stderr and "--allow-pickle" in proc.stderr
    assert not (tmp_path / "refused").exists()

    proc = run_tool("from_npz", str(npz), "-o", str(tmp_path / "no_info"), "--no-info")
    assert proc.returncode == 0, proc.stderr
    with Bag(tmp_path / "no_info") as bag:
        terms = bag.decode("/rollout/reward_terms", 0)
        assert terms.terms == [] and bag.read_arrays("/rollout/state", ["step"])["step"].tolist() == [0, 1, 2, 3, 4]

    proc = run_tool("from_npz", str(npz), "--allow-pickle")  # default output: the bag it came from
    assert proc.returncode == 2 and "already exists" in proc.stderr
    (tmp_path / "other.npz").write_bytes(npz.read_bytes())
    proc = run_tool("from_npz", str(tmp_path / "other.npz"), "--allow-pickle")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "other" / "other_0.mcap").is_file() and (tmp_path / "other" / "metadata.yaml").is_file()


def original_tool_npz(path: Path, T: int = 12, N: int = 2) -> dict[str, np.ndarray]:
    """An NPZ as the tool this grew out of wrote it: six keys, float64 arrays, info with terms only."""
    rng = np.random.default_rng(3)
    info = np.empty(T, dtype=object)
    for t in range(T):
        info[t] = {"reward_terms": {"alive": np.ones(N), "track": rng.normal(size=N)}}
    arrays = {
        "obs": rng.normal(size=(T, N, 6)),
        "act": rng.normal(size=(T, N, 2)),
        "rew": rng.normal(size=(T, N)),
        "info": info,
        "base_pos": rng.normal(size=(T, N, 3)),
        "base_quat": np.tile([0.0, 0.0, 0.0, 1.0], (T, N, 1)),
    }
    np.savez(path, **arrays)
    return arrays


def test_npz_from_the_original_tool_becomes_a_replayable_bag(tmp_path: Path) -> None:
    src = original_tool_npz(tmp_path / "old.npz")
    bag = npz_to_bag(tmp_path / "old.npz", allow_pickle=True, dt=0.02)
    assert bag == tmp_path / "old"
    with Bag(bag) as b:
        robot = b.decode("/rollout/robot", 0)
        assert (robot.num_envs, robot.obs_dim, robot.act_dim) == (2, 6, 2)
        assert robot.reward_term_names == ["alive", "track"] and robot.dt == 0.02
        assert robot.model == BASE_MODEL and robot.body_names == ["base"]  # no model in the NPZ: the base is drawn
        assert b.topics["/rollout/robot"].latched
        times = b.log_times("/rollout/state")
        assert np.all(np.diff(times) == 20_000_000) and times[0] > 10**18  # wall-clock stamps
        assert b.decode("/rollout/state", 3).sim_time == pytest.approx(0.06)
    back = bag_to_npz(bag, tmp_path / "back.npz")
    z = np.load(back.path, allow_pickle=True)
    for key in ("obs", "act", "rew", "base_pos", "base_quat"):
        assert z[key].dtype == np.float32 and np.array_equal(z[key], src[key].astype(np.float32))
    assert np.array_equal(z["info"][4]["reward_terms"]["track"], src["info"][4]["reward_terms"]["track"].astype(np.float32))
    assert z["info"][4]["step"] == 4 and not z["info"][4]["done"].any()


def test_malformed_npz_files_are_refused_clearly(tmp_path: Path) -> None:
    np.savez(tmp_path / "partial.npz", obs=np.zeros((3, 2, 4), np.float32))
    with pytest.raises(BagError, match="lacks the documented key"):
        load_npz(tmp_path / "partial.npz")
    arrays = {k: v for k, v in original_tool_npz(tmp_path / "x.npz").items() if k != "info"}
    arrays["base_quat"] = np.zeros((12, 2, 3))
    np.savez(tmp_path / "quat.npz", **arrays)
    with pytest.raises(BagError, match=r"base_quat has shape \(12, 2, 3\)"):
        load_npz(tmp_path / "quat.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(BagError, match="is not an .npz file"):
        load_npz(tmp_path / "text.npz")
