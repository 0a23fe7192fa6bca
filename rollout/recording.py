"""Record a rollout straight into a bag, without launching a graph.

    from rollout import make_env, RolloutRecorder
    env = make_env("mujoco:Humanoid-v5", num_envs=16, seed=0)
    bag = RolloutRecorder(env, max_steps=500).run("policy.pt2")   # or any callable obs -> actions

The bag holds exactly what `record.launch.py` records (the same `RolloutMessages` bytes), so
every tool (to_npz, replay, the viewer, Foxglove) reads both alike.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from rollout.bag import BagWriter, Compression
from rollout.errors import ParameterError
from rollout.messages import LATCHED_TOPICS, RolloutMessages, RunIdentity
from rollout.policy import policy_for_env
from rollout.progress import Progress, bag_bytes, is_terminal
from rollout.sim import VectorEnv, run_steps


def default_bag_path(root: str | os.PathLike[str] = "rollouts") -> Path:
    """`rollouts/rollout_YYYYmmdd_HHMMSS_mmm`: sortable, and unique for one process at a time."""
    now = datetime.now()
    return Path(root) / f"rollout_{now:%Y%m%d_%H%M%S}_{now.microsecond // 1000:03d}"


class RolloutRecorder:
    """Steps `env` with a policy and writes every message into a new bag."""

    def __init__(
        self,
        env: VectorEnv,
        *,
        max_steps: int,
        out: str | os.PathLike[str] | None = None,
        seed: int = 0,
        compression: Compression = "none",
        tf_envs: Sequence[int] = (0,),
        progress: bool | None = None,
    ) -> None:
        """
        Args:
            env: a vector env (`rollout.sim.make_env` or anything following `VectorEnv`).
            max_steps: control steps to record.
            out: bag path (folder, or a file ending in .mcap); default `default_bag_path()`.
            seed: reset seed, stored in the robot description.
            compression: "none", "lz4" or "zstd".
            tf_envs: envs drawn in Foxglove through /tf and /robot_description.
            progress: print step / total, steps/s, ETA and bag size on stderr once a second
                (default: only when stderr is a terminal).
        """
        if max_steps < 1:
            raise ParameterError(f"max_steps must be at least 1, got {max_steps}")
        self.env = env
        self.max_steps = max_steps
        self.out = Path(out) if out is not None else default_bag_path()
        self.seed = seed
        self.compression = compression
        self.tf_envs = tf_envs
        self.progress = is_terminal(sys.stderr) if progress is None else progress

    def run(self, policy: Callable[[np.ndarray], np.ndarray] | str) -> Path:
        """Record `max_steps` steps of `policy` (a callable, or a spec for `make_policy`; "checkpoint": the
        env's own, e.g. a ProtoMotions checkpoint's agent); returns the bag path."""
        if isinstance(policy, str):
            policy = policy_for_env(self.env, policy, seed=self.seed)
        identity = RunIdentity(
            seed=self.seed,
            policy=str(getattr(policy, "name", "") or getattr(policy, "__name__", "")),
            policy_sha256=str(getattr(policy, "sha256", "") or ""),
        )
        messages = RolloutMessages(self.env.info, identity, tf_envs=self.tf_envs)
        with BagWriter(self.out, compression=self.compression) as bag:
            for topic, type_name in messages.topic_types.items():
                bag.add_topic(topic, type_name, latched=topic in LATCHED_TOPICS)
            sequence: dict[str, int] = {}

            def write(items: list[tuple[str, bytes]], stamp: int) -> None:
                for topic, data in items:
                    sequence[topic] = sequence.get(topic, 0) + 1
                    bag.write(topic, data, stamp, sequence=sequence[topic])

            write(messages.latched(time.time_ns()), time.time_ns())
            shown = Progress(self.max_steps, size=lambda: bag_bytes(self.out)) if self.progress else None
            for rec in run_steps(self.env, policy, seed=self.seed, steps=self.max_steps):
                stamp = time.time_ns()
                write(messages.step(rec, stamp), stamp)
                if shown is not None:
                    shown.update(rec.step + 1)
            if shown is not None:
                shown.finish()
        return self.out
