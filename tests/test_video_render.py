"""Rendering a moving humanoid straight into an MP4 gives a video that shows it moving."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import imageio_ffmpeg
import numpy as np

from rollout.model import wxyz_to_xyzw
from rollout.render import FrameRenderer
from rollout.video import VideoWriter


def humanoid_rollout(steps: int) -> tuple[str, list[np.ndarray]]:
    """Model text and [1, B, 7] body poses of Gymnasium's Humanoid-v5 under random actions."""
    env = gym.make("Humanoid-v5")
    env.reset(seed=0)
    env.action_space.seed(0)
    data = env.unwrapped.data
    text = Path(env.unwrapped.fullpath).read_text()
    poses = []
    for _ in range(steps):
        env.step(env.action_space.sample())
        poses.append(np.concatenate([data.xpos[1:], wxyz_to_xyzw(data.xquat[1:])], axis=1)[None].astype(np.float32))
    env.close()
    return text, poses


def test_rendered_rollout_video_is_not_blank_and_moves(tmp_path):
    text, poses = humanoid_rollout(40)
    path = tmp_path / "humanoid.mp4"
    rendered = []
    with FrameRenderer(text, width=320, height=240, preset="side", overlay=True) as renderer:
        with VideoWriter(path, fps=20) as video:
            for step, pose in enumerate(poses):
                frame = renderer.render(pose, step=step, reward=float(step))
                video.append(frame)
                rendered.append(frame)

    assert imageio_ffmpeg.count_frames_and_secs(str(path)) == (40, 2.0)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert meta["size"] == (320, 240)
    decoded = [np.frombuffer(b, np.uint8).reshape(240, 320, 3).astype(int) for b in reader]
    assert len(decoded) == 40
    for frame in decoded:  # a real picture, not a flat colour
        assert frame.std() > 20
    for got, want in zip(decoded, rendered):  # what was rendered is what plays
        mse = ((got - want) ** 2).mean()
        assert 10 * np.log10(255**2 / mse) > 28
    moves = [np.abs(a - b).mean() for a, b in zip(decoded, decoded[1:])]
    assert min(moves) > 1.0  # every frame differs clearly from the one before
    robot = [robot_mask(f) for f in decoded]
    assert all(m.sum() > 300 for m in robot)  # the humanoid is in every frame
    assert (robot[0] != robot[-1]).sum() > 0.5 * robot[0].sum()  # and has visibly moved (it falls)


def robot_mask(frame: np.ndarray) -> np.ndarray:
    """Pixels of the humanoid's orange (0.8, 0.6, 0.4); floor and sky are grey and blue-grey."""
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    return (r > 60) & (r - b > 40) & (r > g)
