"""Read every chunk of a bag, check its CRC, and say what is damaged (topic, time range).

    rollout bag check rollouts/rollout_20261124_101500_123

Exit 0 when the bag is whole; 1, with one line per problem, when not.
"""

from __future__ import annotations

import argparse

from rollout.bag_cli.paths import resolve_bag


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="bag folder or .mcap file, or latest")


def main(args: argparse.Namespace) -> int:
    from rollout.bag import check

    report = check(resolve_bag(args.path))
    print("\n".join(report.lines()))
    return 0 if report.ok else 1
