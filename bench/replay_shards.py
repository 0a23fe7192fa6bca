"""Playing shards as one rollout: what merging each step costs next to playing one bag's bytes.

    python3 bench/replay_shards.py                     # 2 shards x 1,024 envs, 60 steps, in /dev/shm
    python3 bench/replay_shards.py --shards 4 --envs 1024 --steps 40

Records the shards (synthetic env at Humanoid's sizes, obs 376) and, as the baseline, the same
envs as one bag of shards x envs; then plays both to the end with the player at rate 0 (as fast
as the consumer takes it, the video encoder's case), every message handed out. Prints the open
and timeline times, ms per control step (all of a step's topics) and MB/s of played messages for each, and the
peak RSS: merging holds one step of every shard, never the rollout.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def play(bag: object) -> tuple[float, int]:
    from rollout.replay import Player

    player = Player(bag, rate=0, start_paused=True)  # type: ignore[arg-type]
    size = sum(item.data.nbytes for item in player.due())
    t = time.perf_counter()
    while not player.finished:
        size += sum(item.data.nbytes for item in player.burst(64))
    return time.perf_counter() - t, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--envs", type=int, default=1024, help="envs per shard")
    ap.add_argument("--steps", type=int, default=60)
    a = ap.parse_args()
    from shard_bags import record_shards

    from rollout.bag import Bag
    from rollout.replay import timeline
    from rollout.replay.shards import ShardSet

    root = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    try:
        names = [f"rank{r}" for r in range(a.shards)]
        paths = [record_shards(root / ns, [(ns, a.envs)], steps=a.steps, obs_dim=376) for ns in names]
        whole = record_shards(root / "whole", [("", a.shards * a.envs)], steps=a.steps, obs_dim=376)
        t = time.perf_counter()
        with ShardSet.open(paths) as merged:
            opened = time.perf_counter() - t
            t = time.perf_counter()
            timeline(merged)
            tl = time.perf_counter() - t
            took, size = play(merged)
        with Bag(whole) as bag:
            base, base_size = play(bag)
            t = time.perf_counter()
            timeline(bag)
            base_tl = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{a.shards} shards x {a.envs} envs, {a.steps} steps ({size / a.steps / 1e6:.1f} MB a step)")
        print(f"  merged: open {opened * 1e3:.0f} ms, timeline {tl * 1e3:.0f} ms, "
              f"{took / a.steps * 1e3:.1f} ms/step, {size / took / 1e6:.0f} MB/s")
        print(f"  one bag of {a.shards * a.envs} envs (baseline): timeline {base_tl * 1e3:.0f} ms, "
              f"{base / a.steps * 1e3:.2f} ms/step, {base_size / base / 1e6:.0f} MB/s")
        print(f"  peak RSS {rss:.0f} MB (this process, recording included)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
