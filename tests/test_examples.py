"""The examples run as users would run them, and produce what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_record_export_video_example(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, str(EXAMPLES / "record_export_video.py"), "--num-envs", "3", "--steps", "40", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    data = np.load(tmp_path / "rollout.npz", allow_pickle=True)
    assert data["obs"].shape == (40, 3, 348) and data["base_quat"].shape == (40, 3, 4)
    assert "video:" in p.stdout and "(40 frames)" in p.stdout
    assert (tmp_path / "env0.mp4").stat().st_size > 1000
