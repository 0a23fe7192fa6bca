"""Convert a recorded rollout bag into an .npz (obs, act, rew, info, base_pos, base_quat).

    ros2 run rollout to_npz rollouts/rollout_20250101_120000
    rollout run to_npz BAG -o out.npz --envs 0-3 --steps 100:500 --extra reward_terms,flags
    rollout run to_npz host1_bag host2_bag -o all.npz    # shards (one per rank/host), envs concatenated

Reads /rollout/state, /rollout/action and /rollout/reward_terms; steps present in all three
become the T rows. Shapes and dtypes: see `rollout.export` and the README's NPZ schema.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from rollout.cli_errors import user_errors_exit
from rollout.errors import RolloutError
from rollout.export.sharded import is_sharded, rollout_set_to_npz
from rollout.export.to_npz import EXTRAS, bag_to_npz
from rollout.runtime.params import parse_env_ids


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
    names = [e.strip() for e in text.split(",") if e.strip()]
    if names == ["all"]:
        return list(EXTRAS)
    for e in names:
        if e not in EXTRAS:
            raise RolloutError(f"unknown --extra {e!r}; choose from {', '.join(EXTRAS)} or all")
    return names


class ProgressBars:
    """One tqdm bar per stage; shown only on a terminal and for stages longer than half a second."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage or self.bar is None:
            self.close()
            self.bar = tqdm(total=total, desc=stage, unit="msg", delay=0.5, leave=False, disable=None)
            self.stage = stage
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="to_npz", description="Convert a rollout bag into an .npz file.")
    p.add_argument("bag", nargs="+", help="bag folder or .mcap file; several (or one of namespaced sims): shards read as one rollout")
    p.add_argument("-o", "--output", help="output .npz (default: next to the bag, <bag>.npz)")
    p.add_argument("--envs", help="envs to keep, e.g. 0,3,5-7 (default all)")
    p.add_argument("--steps", help="control steps START:STOP to keep (stop excluded), e.g. 100:500")
    p.add_argument("--time", help="sim time in seconds START:STOP to keep, e.g. 2.5:10")
    p.add_argument("--compress", action="store_true", help="write a compressed .npz (smaller, slower)")
    p.add_argument("--extra", default="", help=f"extra keys: comma list of {', '.join(EXTRAS)}, or all")
    p.add_argument("-f", "--force", action="store_true", help="overwrite the output if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@user_errors_exit("to_npz")
def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in args:  # `ros2 run` may append ROS arguments; this tool has none
        args = args[: args.index("--ros-args")]
    a = build_parser().parse_args(args)
    bars = ProgressBars(enabled=not a.no_progress)
    convert = bag_to_npz if not is_sharded(a.bag) else rollout_set_to_npz
    try:
        written = convert(
            a.bag if convert is rollout_set_to_npz else a.bag[0],
            a.output,
            envs=parse_envs(a.envs) if a.envs else None,
            steps=parse_range(a.steps, int, "--steps") if a.steps else None,
            sim_time=parse_range(a.time, float, "--time") if a.time else None,
            extras=parse_extras(a.extra),
            compressed=a.compress,
            overwrite=a.force,
            progress=bars,
        )
    finally:
        bars.close()
    T, N = written.shape
    print(f"wrote {written.path}: {T} steps x {N} envs ({', '.join(written.keys)})")
    for note in written.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
