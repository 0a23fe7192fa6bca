"""Convert an .npz rollout into a bag that replays: `rollout bag from-npz` under its ros2 run name.

    ros2 run rollout from_npz rollout.npz --allow-pickle
    rollout run from_npz rollout.npz -o rollouts/from_npz --no-info

`info` is unpickled only with --allow-pickle; see `rollout.bag_cli.from_npz`.
"""

from __future__ import annotations

import argparse
import sys

from rollout.bag_cli import from_npz
from rollout.cli_errors import user_errors_exit


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="from_npz", description="Convert an .npz rollout into a bag.")
    from_npz.add_arguments(p)
    return p


@user_errors_exit("from_npz")
def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in args:
        args = args[: args.index("--ros-args")]
    return from_npz.main(build_parser().parse_args(args))


if __name__ == "__main__":
    sys.exit(main())
