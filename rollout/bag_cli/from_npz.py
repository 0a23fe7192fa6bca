"""Convert an .npz rollout (obs, act, rew, info, base_pos, base_quat) into a bag that replays.

    rollout bag from-npz rollout.npz --allow-pickle
    rollout bag from-npz rollout.npz -o rollouts/from_npz --no-info

`info` is a pickled object array; unpickling a file can run code chosen by whoever made it, so
it is read only with --allow-pickle (or skipped with --no-info: no reward terms, no done flags).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("npz", help="input .npz")
    p.add_argument("-o", "--output", help="bag folder (or .mcap file) to create (default: the .npz path without .npz)")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="unpickle `info` (needed for reward terms and done flags); only for files you trust",
    )
    p.add_argument("--no-info", action="store_true", help="convert without `info` (no pickle needed)")
    p.add_argument("--dt", type=float, help="control step in seconds (default: from the file, else 1/30)")
    p.add_argument("--compression", choices=["none", "lz4", "zstd"], default="none", help="bag chunk compression")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rollout.export.from_npz import npz_to_bag

    bar = tqdm(desc="writing bag", unit="step", delay=0.5, leave=False, disable=True if args.no_progress else None)
    try:
        path = npz_to_bag(
            args.npz,
            args.output,
            allow_pickle=args.allow_pickle,
            info=not args.no_info,
            dt=args.dt,
            compression=args.compression,
            progress=lambda done, total: (setattr(bar, "total", total), bar.update(done - bar.n)),
        )
    finally:
        bar.close()
    print(f"wrote {path}")
    return 0
