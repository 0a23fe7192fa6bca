"""Rewrite a killed or damaged bag into a complete, indexed bag, keeping every readable chunk.

    rollout bag repair rollouts/rollout_20261124_101500_123
    rollout bag repair run.mcap -o run_fixed.mcap

Every message in a readable chunk is kept and what was dropped is listed; the original stays
unless --in-place. Re-running it replaces its own earlier output.
"""

from __future__ import annotations

import argparse

from rollout.bag_cli.paths import resolve_bag


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="bag folder or .mcap file, or latest")
    p.add_argument("-o", "--output", help="where to write (default: <name>_repaired beside it)")
    p.add_argument("--in-place", action="store_true", help="replace the original")


def main(args: argparse.Namespace) -> int:
    from rollout.bag import repair

    result = repair(resolve_bag(args.path), output=args.output, in_place=args.in_place)
    print("\n".join(result.lines()))
    return 0
