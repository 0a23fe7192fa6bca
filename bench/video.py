"""Video throughput: render + encode vs encode alone on the same frames, at 640x480 and 1280x720.

    python3 bench/video.py                       # the GL backend rollout picks, libx264 veryfast
    python3 bench/video.py --backend egl --x264-preset ultrafast --envs 4

For each size, in one run:
  - render: `FrameRenderer.render` of a Humanoid-v5 rollout (body poses of 150 control steps of
    random actions, replayed in a loop), no encoding;
  - encode alone (the baseline): the same frames, rendered beforehand and held in memory,
    streamed through `VideoWriter` (libx264, yuv420p, crash-safe fragmented MP4 + final remux);
  - encode alone, plain MP4 (crash_safe=False): what the crash safety costs;
  - render + encode: each frame rendered and streamed to `VideoWriter` as the encoder node does;
    ffmpeg runs in its own process, so it encodes while the next frame renders.
Frames per second include closing the file; each figure is the best of --repeats interleaved
rounds. The issue's target: >= 30 fps at 640x480.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def humanoid_poses(steps: int) -> tuple[str, list[np.ndarray]]:
    """Model text and [1, B, 7] body poses (x, y, z, qx, qy, qz, qw) of Humanoid-v5 under random actions."""
    import gymnasium as gym

    from rollout.model import wxyz_to_xyzw

    env = gym.make("Humanoid-v5")
    env.reset(seed=0)
    env.action_space.seed(0)
    data = env.unwrapped.data
    text = Path(env.unwrapped.fullpath).read_text()
    poses = []
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(0.3 * env.action_space.sample())
        if terminated or truncated:
            env.reset()
        poses.append(np.concatenate([data.xpos[1:], wxyz_to_xyzw(data.xquat[1:])], axis=1)[None].astype(np.float32))
    env.close()
    return text, poses


def timed(fn: Callable[[], int]) -> float:
    """Frames per second of `fn`, which returns the frames it produced."""
    t0 = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - t0)


def best_of(repeats: int, fns: dict[str, Callable[[], int]]) -> dict[str, float]:
    """Best frames per second of each function over `repeats` rounds, run interleaved (this machine is noisy)."""
    best = dict.fromkeys(fns, 0.0)
    for _ in range(repeats):
        for name, fn in fns.items():
            best[name] = max(best[name], timed(fn))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240, help="frames per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="rounds; the best of each is printed")
    parser.add_argument("--backend", choices=["osmesa", "egl"], default=None, help="GL backend (default: rollout's choice)")
    parser.add_argument("--x264-preset", default="veryfast")
    parser.add_argument("--envs", type=int, default=1, help="envs shown on a grid (copies of the same rollout)")
    args = parser.parse_args()

    from rollout.render import FrameRenderer
    from rollout.video import VideoWriter

    text, single = humanoid_poses(150)
    poses = [np.repeat(p, args.envs, axis=0) for p in single]
    n = args.frames
    print(f"CPU cores: {os.cpu_count()}; frames per measurement: {n}; envs shown: {args.envs}; x264 preset: {args.x264_preset}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.mp4"
        for width, height in ((640, 480), (1280, 720)):
            with FrameRenderer(
                text, width=width, height=height, preset="side", envs=range(args.envs), spacing=2.0, backend=args.backend
            ) as renderer:
                for p in poses[:10]:  # warm up GL and the camera
                    renderer.render(p)
                frames: list[np.ndarray] = []

                def render_only() -> int:
                    frames.clear()
                    for i in range(n):
                        frames.append(renderer.render(poses[i % len(poses)], step=i))
                    return n

                def encode_only(crash_safe: bool = True) -> int:
                    with VideoWriter(out, fps=30, preset=args.x264_preset, crash_safe=crash_safe) as video:
                        for frame in frames:
                            video.append(frame)
                    return len(frames)

                def render_and_encode() -> int:
                    with VideoWriter(out, fps=30, preset=args.x264_preset) as video:
                        for i in range(n):
                            video.append(renderer.render(poses[i % len(poses)], step=i))
                    return n

                fps = best_of(
                    args.repeats,
                    {
                        "render": render_only,
                        "encode": encode_only,
                        "plain": lambda: encode_only(crash_safe=False),
                        "both": render_and_encode,
                    },
                )
                render_fps, encode_fps, plain_fps, both_fps = fps["render"], fps["encode"], fps["plain"], fps["both"]
                size_mb = out.stat().st_size / 1e6
                backend = renderer.backend
            print(f"\n{width}x{height} (GL: {backend})")
            print(f"  render only                      {render_fps:7.1f} fps")
            print(f"  encode alone (baseline)          {encode_fps:7.1f} fps")
            print(f"  encode alone, plain MP4          {plain_fps:7.1f} fps   {plain_fps / encode_fps:5.2f}x baseline")
            print(
                f"  render + encode                  {both_fps:7.1f} fps   {both_fps / encode_fps:5.2f}x baseline,"
                f" {both_fps / render_fps:5.2f}x render only, {size_mb:.2f} MB for {n / 30:.0f} s"
            )
            if (width, height) == (640, 480):
                verdict = "meets" if both_fps >= 30 else "MISSES"
                print(f"  target >= 30 fps at 640x480: {verdict}")


if __name__ == "__main__":
    main()
