"""`latest_recording()`: what `bag:=latest` and `rollout bag info latest` mean."""

from __future__ import annotations

from pathlib import Path

from rollout import topics
from rollout.bag.reader import Bag
from rollout.errors import BagError, RolloutError


def latest_recording(root: str = "rollouts") -> Path:
    """The newest rollout recording under `root` (the recorder's default output folder): a bag
    folder or .mcap file with /rollout/state messages; NPZ files and empty bags are passed over."""
    folder = Path(root)
    found = [
        p
        for p in (folder.iterdir() if folder.is_dir() else ())
        if p.suffix == ".mcap" or (p.is_dir() and ((p / "metadata.yaml").is_file() or any(p.glob("*.mcap"))))
    ]
    for path in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            with Bag(path) as bag:
                if topics.STATE in bag.topics and bag.count(topics.STATE):
                    return path
        except RolloutError:
            continue  # a broken bag is not the latest recording
    raise BagError(f"latest: found no rollout recording in {folder.resolve()}")
