"""Convert a recorded rollout bag into an .npz: `rollout bag to-npz` under its ros2 run name.

    ros2 run rollout to_npz rollouts/rollout_20250101_120000
    rollout run to_npz BAG -o out.npz --envs 0-3 --steps 100:500 --extra reward_terms,flags

The work is done by the verb module `rollout.bag_cli.to_npz` (the README's NPZ schema).
"""

from __future__ import annotations

import argparse
import sys

from rollout.bag_cli import to_npz
from rollout.cli_errors import user_errors_exit


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="to_npz", description="Convert a rollout bag into an .npz file.")
    to_npz.add_arguments(p)
    return p


@user_errors_exit("to_npz")
def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in args:  # `ros2 run` may append ROS arguments; this tool has none
        args = args[: args.index("--ros-args")]
    return to_npz.main(build_parser().parse_args(args))


if __name__ == "__main__":
    sys.exit(main())
