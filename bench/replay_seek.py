"""Replay seek latency on a big bag: `Player.seek_step` / `seek` / `seek_episode` and `timeline`.

    python3 bench/replay_seek.py                      # ~1.0 GB bag: 8,500 steps x 64 envs
    python3 bench/replay_seek.py --steps 2000 --compression zstd --dir /tmp

The bag is written once into --dir (default /tmp) as the sim node records it (robot description
latched, then State [obs 348, 14 body poses], Action, RewardTerms with 4 terms and, every 50
steps, EpisodeEvents). Figures: time to open the bag and build the Player (merged index), to build
the Timeline, and the median / worst of --seeks random seeks of each kind, each followed by
collecting what the seek hands out (the latched topics and, while paused, the target step).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_bag(path: Path, steps: int, envs: int, compression: str) -> None:
    from rollout.bag import BagWriter
    from rollout.codec import get_type, serialize

    State, Action = get_type("rollout_msgs/msg/State"), get_type("rollout_msgs/msg/Action")
    RewardTerms, RewardTerm = get_type("rollout_msgs/msg/RewardTerms"), get_type("rollout_msgs/msg/RewardTerm")
    Events, Robot = get_type("rollout_msgs/msg/EpisodeEvents"), get_type("rollout_msgs/msg/RobotDescription")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(4, envs, 348)).astype(np.float32)
    poses = rng.normal(size=(envs, 14, 7)).astype(np.float32)
    t0, dt = 1_750_000_000_000_000_000, 15_000_000
    names = ["reward_survive", "reward_forward", "reward_ctrl", "reward_contact"]
    with BagWriter(path, compression=compression) as bag:
        bag.add_topic("/rollout/robot", "rollout_msgs/msg/RobotDescription", latched=True)
        for topic, kind in [("/rollout/state", State), ("/rollout/action", Action), ("/rollout/reward_terms", RewardTerms),
                            ("/rollout/episodes", Events)]:  # fmt: skip
            bag.add_topic(topic, kind.__msgtype__)
        bag.write("/rollout/robot", serialize(Robot(num_envs=envs, reward_term_names=names, dt=0.015)), t0 - 1)
        for s in range(steps):
            ts = t0 + s * dt
            state = State(step=s, sim_time=s * 0.015, num_envs=envs, obs_dim=348, num_bodies=14,
                          obs=obs[s % 4], body_poses=poses, done=np.zeros(envs, bool))  # fmt: skip
            bag.write("/rollout/state", serialize(state), ts)
            bag.write("/rollout/action", serialize(Action(step=s, action=obs[s % 4, :, :17])), ts)
            terms = [RewardTerm(name=n, mean=0.0, value=obs[s % 4, :, k]) for k, n in enumerate(names)]
            bag.write("/rollout/reward_terms", serialize(RewardTerms(step=s, terms=terms, total=obs[s % 4, :, 5])), ts)
            if s % 50 == 49:
                ids = np.arange(s // 50 % envs, envs, 7, dtype=np.uint32)
                bag.write("/rollout/episodes", serialize(Events(step=s, env_ids=ids)), ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8500)
    ap.add_argument("--envs", type=int, default=64)
    ap.add_argument("--compression", default="none", choices=["none", "lz4", "zstd"])
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--seeks", type=int, default=200)
    a = ap.parse_args()

    from rollout.bag import Bag
    from rollout.replay import Player, timeline

    path = Path(a.dir) / f"replay_seek_{a.steps}x{a.envs}_{a.compression}.mcap"
    if not path.exists():
        t = time.perf_counter()
        make_bag(path, a.steps, a.envs, a.compression)
        print(f"wrote {path} in {time.perf_counter() - t:.1f} s")
    print(f"bag: {path.stat().st_size / 1e9:.2f} GB, {a.steps} steps x {a.envs} envs, {a.compression}")

    t = time.perf_counter()
    bag = Bag(path)
    player = Player(bag, start_paused=True)
    print(f"open + Player: {(time.perf_counter() - t) * 1e3:.1f} ms ({player.message_count} messages)")
    t = time.perf_counter()
    tl = timeline(bag)
    print(f"timeline: {(time.perf_counter() - t) * 1e3:.0f} ms ({len(tl.steps)} steps x {len(tl.env_ids)} envs)")

    rng = np.random.default_rng(1)
    span = bag.end_time - bag.start_time

    def measure(name: str, fn, args) -> None:
        times = []
        for x in args:
            t = time.perf_counter()
            fn(x)
            player.due()
            times.append(time.perf_counter() - t)
        ms = np.array(times) * 1e3
        print(f"{name:>22}: median {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms")

    steps = rng.integers(0, a.steps, a.seeks)
    measure("seek_step (paused)", player.seek_step, steps)
    player.resume()
    measure("seek_step (playing)", player.seek_step, steps)
    measure("seek (time)", player.seek, bag.start_time + rng.integers(0, span, a.seeks))
    player.pause()
    measure(
        "seek_episode (paused)",
        lambda d: player.seek_episode(int(rng.integers(0, a.envs)), d),
        rng.choice([-1, 1], a.seeks),
    )
    bag.close()


if __name__ == "__main__":
    main()
