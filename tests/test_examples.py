"""The examples run as users would run them, twice in a row, and produce what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_record_export_video_example_runs_twice_into_the_same_folder(tmp_path: Path) -> None:
    cmd = [sys.executable, str(EXAMPLES / "record_export_video.py"), "--num-envs", "3", "--steps", "40", "--out", str(tmp_path)]
    for run in range(2):  # the second run replaces the first one's outputs
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
        assert p.returncode == 0, f"run {run + 1}: {p.stderr}"
        data = np.load(tmp_path / "rollout.npz", allow_pickle=True)
        assert data["obs"].shape == (40, 3, 348) and data["base_quat"].shape == (40, 3, 4)
        assert "video:" in p.stdout and "(40 frames)" in p.stdout
        assert (tmp_path / "env0.mp4").stat().st_size > 1000


def test_example_uses_the_shipped_demo_policy(tmp_path: Path) -> None:
    from rollout.bag import Bag
    from rollout.policy import sha256_file

    cmd = [sys.executable, str(EXAMPLES / "record_export_video.py"), "--num-envs", "2", "--steps", "5", "--out", str(tmp_path)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr
    with Bag(tmp_path / "bag") as bag:
        robot = bag.decode("/rollout/robot", 0)
        shipped = EXAMPLES.parent / "rollout" / "data" / "humanoid_walk.pt2"
        assert robot.policy == "demo" and robot.policy_sha256 == sha256_file(shipped)  # named, and the file's own hash
