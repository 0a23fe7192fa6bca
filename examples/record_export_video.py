"""Record a rollout without launching a graph, load it as numpy, and cut a short video.

    python examples/record_export_video.py --num-envs 8 --steps 300 --out /tmp/demo

The same three steps the nodes do, as library calls: `RolloutRecorder` writes the bag that
`record.launch.py` would, `bag_to_npz` is the `to_npz` node, and `save_video` takes any frames
you already have (here rendered from the recorded states). Run it again and it replaces its
own outputs in `--out`.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from rollout import RolloutRecorder, make_env, open_bag, save_video
from rollout.export import bag_to_npz
from rollout.render import FrameRenderer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--policy", default="demo", help="demo (the shipped walker), a .pt2 checkpoint, zero or random")
    p.add_argument("--out", type=Path, default=Path("rollouts/example"))
    a = p.parse_args()

    # 1. record: N humanoids, policy in the loop, straight into an MCAP bag
    env = make_env("mujoco:Humanoid-v5", num_envs=a.num_envs, seed=0)
    if (a.out / "bag").is_dir():
        shutil.rmtree(a.out / "bag")  # this example's own bag from an earlier run (a bag is never overwritten)
    bag_path = RolloutRecorder(env, max_steps=a.steps, out=a.out / "bag").run(a.policy)  # or any obs -> actions callable
    print(f"bag: {bag_path}")

    # 2. numpy: the documented NPZ schema (obs, act, rew, info, base_pos, base_quat)
    written = bag_to_npz(bag_path, a.out / "rollout.npz", overwrite=True)
    data = np.load(written.path, allow_pickle=True)  # our own file: safe to unpickle `info`
    print(f"npz: {written.path} obs {data['obs'].shape} mean reward {data['rew'].mean():.3f}")
    print(f"reward terms at step 0: {sorted(data['info'][0]['reward_terms'])}")

    # 3. video: frames you already have -> MP4 (here: env 0 rendered from the recorded states)
    with open_bag(bag_path) as bag, FrameRenderer(bag.decode("/rollout/robot", 0).model, width=320, height=240) as r:
        frames = (r.render(state) for state in bag.iter_decoded("/rollout/state"))
        n = save_video(frames, a.out / "env0.mp4", fps=round(1 / env.info.dt))
    print(f"video: {a.out / 'env0.mp4'} ({n} frames)")


if __name__ == "__main__":
    main()
