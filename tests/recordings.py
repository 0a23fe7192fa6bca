"""Real recordings for tests: the MuJoCo humanoid with random actions, straight into a bag."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rollout.recording import RolloutRecorder
from rollout.sim import make_env


def record_humanoid(
    out: Path,
    *,
    num_envs: int = 3,
    steps: int = 30,
    seed: int = 0,
    compression: str = "none",
    tf_envs: Sequence[int] = (0, 1),
    policy: str = "random",
) -> Path:
    """Record `steps` steps of `num_envs` humanoids into a new bag at `out`; returns its path."""
    env = make_env("mujoco:Humanoid-v5", num_envs=num_envs, seed=seed)
    recorder = RolloutRecorder(env, max_steps=steps, out=out, seed=seed, compression=compression, tf_envs=tf_envs)
    return recorder.run(policy)
