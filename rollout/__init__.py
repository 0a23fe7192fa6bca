"""rollout: record, replay, inspect and export reinforcement-learning policy rollouts.

The programmatic API (no graph launched):

    from rollout import make_env, make_policy, RolloutRecorder, save_video
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {  # imported on first use: `import rollout` stays cheap for the CLI and the nodes
    "make_env": "rollout.sim",
    "make_policy": "rollout.policy",
    "RolloutRecorder": "rollout.recording",
    "save_video": "rollout.video",
    "open_bag": "rollout.bag",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rollout' has no attribute {name!r}")
