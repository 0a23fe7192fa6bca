"""Describe a bag as `ros2 bag info` does, then summarise the rollout in it.

    rollout bag info rollouts/rollout_20261124_101500_123
    rollout bag info latest

The summary (env, N, policy and its sha256, steps, sim time, episodes, returns, reward-term
means) is left out with --no-summary, or when the bag holds no rollout topics.
"""

from __future__ import annotations

import argparse

from rollout.bag_cli.paths import resolve_bag


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="bag folder or .mcap file, or latest (the newest recording under rollouts/)")
    p.add_argument("--no-summary", action="store_true", help="only what ros2 bag info prints")


def main(args: argparse.Namespace) -> int:
    from rollout.bag import info
    from rollout.bag.summary import rollout_summary

    path = resolve_bag(args.path)
    text = info(path)
    if not args.no_summary:
        summary = rollout_summary(path)
        if summary is not None:
            text += "\n" + summary.describe()
    print(text, end="")
    return 0
