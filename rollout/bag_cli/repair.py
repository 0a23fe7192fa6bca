"""Rewrite a bag whose recording was cut short (recorder killed) into a complete, indexed bag.

    rollout bag repair rollouts/rollout_20261124_101500_123
    rollout bag repair run.mcap -o run_fixed.mcap

Every message in a complete chunk is kept; the original stays unless --in-place.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="bag folder or .mcap file")
    p.add_argument("-o", "--output", help="where to write (default: <name>_repaired beside it)")
    p.add_argument("--in-place", action="store_true", help="replace the original")


def main(args: argparse.Namespace) -> int:
    from rollout.bag import repair

    result = repair(args.path, output=args.output, in_place=args.in_place)
    print(f"repaired bag: {result}")
    return 0
