"""`rollout launch` with video:=: every step becomes a frame, live and on replay.

Live, the sim (8 envs stepping far faster than the encoder draws, hundreds of states ahead) exits first and the launcher then
stops the encoder with SIGTERM: the states still queued or in flight must be drawn before the file
is closed, not dropped. The bag recorded alongside is then replayed into a second video.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest

from rollout.bag import Bag

ROLLOUT = [sys.executable, "-m", "rollout.cli"]
STEPS = 300


def launch(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ROLLOUT, "launch", *args], check=False, capture_output=True, text=True, timeout=timeout)


def frames(path: Path) -> int:
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """record.launch.py with video:=, the default MuJoCo humanoid: (result, video, bag)."""
    tmp = tmp_path_factory.mktemp("live")
    video, bag = tmp / "live.mp4", tmp / "bag"
    p = launch("record.launch.py", "num_envs:=8", f"steps:={STEPS}", f"video:={video}", f"out:={bag}")
    return p, video, bag


def test_a_live_recording_with_video_encodes_every_step(live) -> None:
    p, video, bag = live
    assert p.returncode == 0, p.stdout + p.stderr
    assert "sim exited with code 0" in p.stdout  # the encoder was stopped by the launcher, not by itself
    assert f"{STEPS} frames" in p.stdout
    assert frames(video) == STEPS  # the states still queued when the sim ended are in it too
    with Bag(bag) as b:
        assert b.count("/rollout/state") == STEPS


def test_replaying_the_recorded_bag_into_a_video_gives_every_step(live, tmp_path) -> None:
    p, _, bag = live
    assert p.returncode == 0, p.stdout + p.stderr
    video = tmp_path / "replay.mp4"
    r = launch("replay.launch.py", f"bag:={bag}", f"video:={video}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert frames(video) == STEPS
