"""Read every message of a bag through its index and say whether the bag is whole.

    rollout bag check rollouts/rollout_20261124_101500_123

Exit 0 when every message reads back; 1, with one line per problem, when not.
"""

from __future__ import annotations

import argparse

from rollout.bag_cli.paths import resolve_bag


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="bag folder or .mcap file, or latest")


def main(args: argparse.Namespace) -> int:
    from rollout.bag.check import check

    report = check(resolve_bag(args.path))
    print(report.describe())
    return 0 if report.ok else 1
