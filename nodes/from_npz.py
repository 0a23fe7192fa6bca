"""Convert an .npz rollout (obs, act, rew, info, base_pos, base_quat) into a bag that replays.

    ros2 run rollout from_npz rollout.npz --allow-pickle
    rollout run from_npz rollout.npz -o rollouts/from_npz --no-info

`info` is a pickled object array; unpickling a file can run code chosen by whoever made it, so
it is read only with --allow-pickle (or skipped with --no-info: no reward terms, no done flags).
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from rollout.cli_errors import user_errors_exit
from rollout.export.from_npz import npz_to_bag


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="from_npz", description="Convert an .npz rollout into a bag.")
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
    return p


@user_errors_exit("from_npz")
def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in args:
        args = args[: args.index("--ros-args")]
    a = build_parser().parse_args(args)
    bar = tqdm(desc="writing bag", unit="step", delay=0.5, leave=False, disable=True if a.no_progress else None)
    try:
        path = npz_to_bag(
            a.npz,
            a.output,
            allow_pickle=a.allow_pickle,
            info=not a.no_info,
            dt=a.dt,
            compression=a.compression,
            progress=lambda done, total: (setattr(bar, "total", total), bar.update(done - bar.n)),
        )
    finally:
        bar.close()
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
