"""Convert a recorded rollout bag into an .npz (obs, act, rew, info, base_pos, base_quat).

    rollout bag to-npz rollouts/rollout_20261124_101500_123 -o run.npz
    rollout bag to-npz latest --envs 0-3 --steps 100:500 --extra reward_terms,flags

Reads /rollout/state, /rollout/action and /rollout/reward_terms; steps present in all three
become the T rows. Shapes and dtypes: see `rollout.export` and the README's NPZ schema.
"""

from __future__ import annotations

import argparse

from rollout.bag_cli.paths import resolve_bag
from rollout.errors import RolloutError
from rollout.runtime.params import parse_env_ids
from rollout.suggest import did_you_mean


def parse_envs(text: str) -> list[int]:
    """'0,3,5-7' -> [0, 3, 5, 6, 7]."""
    envs = parse_env_ids(text, "--envs")
    if not envs:
        raise RolloutError("--envs is empty")
    return envs


def parse_range(text: str, kind: type, flag: str) -> tuple:
    """'A:B', 'A:' or ':B' -> (A, B) with None for an open end."""
    lo, sep, hi = text.partition(":")
    if not sep:
        raise RolloutError(f"{flag} takes START:STOP (either may be empty), not {text!r}")
    try:
        return (kind(lo) if lo.strip() else None, kind(hi) if hi.strip() else None)
    except ValueError:
        raise RolloutError(f"{flag} takes numbers like 100:500, not {text!r}") from None


def parse_extras(text: str) -> list[str]:
    from rollout.export.to_npz import EXTRAS

    names = [e.strip() for e in text.split(",") if e.strip()]
    if names == ["all"]:
        return list(EXTRAS)
    for e in names:
        if e not in EXTRAS:
            raise RolloutError(f"unknown --extra {e!r}{did_you_mean(e, EXTRAS)}; choose from {', '.join(EXTRAS)} or all")
    return names


class ProgressBars:
    """One tqdm bar per stage; shown only on a terminal and for stages longer than half a second."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar = None
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if stage != self.stage or self.bar is None:
            self.close()
            self.bar = tqdm(total=total, desc=stage, unit="msg", delay=0.5, leave=False, disable=None)
            self.stage = stage
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bag", nargs="+", help="bag folder or .mcap file, or latest (the newest recording under rollouts/); "
                   "several (or one of namespaced sims): their shards read as one rollout, envs concatenated")
    p.add_argument("-o", "--output", help="output .npz (default: next to the bag, <bag>.npz)")
    p.add_argument("--envs", help="envs to keep, e.g. 0,3,5-7 (default all)")
    p.add_argument("--steps", help="control steps START:STOP to keep (stop excluded), e.g. 100:500")
    p.add_argument("--time", help="sim time in seconds START:STOP to keep, e.g. 2.5:10")
    p.add_argument("--compress", action="store_true", help="write a compressed .npz (smaller, slower)")
    p.add_argument("--extra", default="", help="extra keys, comma separated: joint_pos, body_poses, reward_terms, flags, robot; or all")
    p.add_argument("-f", "--force", action="store_true", help="overwrite the output if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from rollout.export.sharded import is_sharded, rollout_set_to_npz
    from rollout.export.to_npz import bag_to_npz

    bags = [resolve_bag(b) for b in args.bag]
    sharded = is_sharded(bags)
    bars = ProgressBars(enabled=not args.no_progress)
    try:
        written = (rollout_set_to_npz if sharded else bag_to_npz)(
            bags if sharded else bags[0],
            args.output,
            envs=parse_envs(args.envs) if args.envs else None,
            steps=parse_range(args.steps, int, "--steps") if args.steps else None,
            sim_time=parse_range(args.time, float, "--time") if args.time else None,
            extras=parse_extras(args.extra),
            compressed=args.compress,
            overwrite=args.force,
            progress=bars,
        )
    finally:
        bars.close()
    T, N = written.shape
    print(f"wrote {written.path}: {T} steps x {N} envs ({', '.join(written.keys)})")
    for note in written.notes:
        print(f"note: {note}")
    return 0
