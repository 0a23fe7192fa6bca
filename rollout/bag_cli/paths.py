"""Bag paths as the verbs take them: a path, or `latest` for the newest recording."""

from __future__ import annotations

from pathlib import Path


def resolve_bag(text: str) -> Path:
    """`latest` -> the newest recording under rollouts/; anything else as given."""
    if text == "latest" and not Path(text).exists():
        from rollout.bag.latest import latest_recording

        return latest_recording()
    return Path(text)
