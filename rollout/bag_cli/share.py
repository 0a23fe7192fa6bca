"""Export a rollout, or a step range of it, as one HTML file that plays offline in any browser.

    rollout bag share latest -o run.html
    rollout bag share rollouts/rollout_20261124_101500_123 -o fall.html --steps 200:400 --envs 3 --camera Follow

The page is viser's static client with the scene inlined: it opens from file:// (mail it, attach
it to an issue) with no server and no network, and has a timeline (play/pause, scrub, speed).
Robots are drawn as the live viewer draws them; frames are every k-th step, k chosen for --fps
frames per sim second (an --fps at or above the control rate keeps every step).
"""

from __future__ import annotations

import argparse

from rollout.bag_cli.paths import resolve_bag
from rollout.bag_cli.to_npz import parse_envs, parse_range


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rollout.export.share import DEFAULT_FPS, DEFAULT_MAX_ENVS

    p.add_argument("bag", help="bag folder or .mcap file, or latest (the newest recording under rollouts/)")
    p.add_argument("-o", "--output", required=True, help="the .html file to write")
    p.add_argument("--steps", help="control steps START:STOP to show (stop excluded), e.g. 100:500")
    p.add_argument("--envs", help="envs to draw, e.g. 0,3,5-7 (default all, up to --max-envs)")
    p.add_argument("--max-envs", type=int, default=DEFAULT_MAX_ENVS, help="draw at most this many envs (default %(default)s)")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS,
                   help="frames per sim second (default %(default)g); at or above the control rate: every step")  # fmt: skip
    p.add_argument("--camera", default="Side", help="initial view: Top, Side, Front or Follow (default %(default)s)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite the output if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rollout.export.share import share_html

    bar = tqdm(desc="frames", unit="frame", delay=0.5, leave=False, disable=True if args.no_progress else None)
    try:
        shared = share_html(
            resolve_bag(args.bag),
            args.output,
            steps=parse_range(args.steps, int, "--steps") if args.steps else None,
            envs=parse_envs(args.envs) if args.envs else None,
            max_envs=args.max_envs,
            fps=args.fps,
            camera=args.camera,
            overwrite=args.force,
            progress=lambda done, total: (setattr(bar, "total", total), bar.update(done - bar.n)),
        )
    finally:
        bar.close()
    print(shared.describe())
    for note in shared.notes:
        print(f"note: {note}")
    return 0
