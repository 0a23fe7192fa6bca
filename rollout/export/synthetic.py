"""A synthetic rollout recorded straight into a bag, for tests and benchmarks.

Writes what the sim node publishes, through the same `RolloutMessages` builder:
RobotDescription once, then per control step State, Action, RewardTerms, base poses and (where
episodes end) episode events, with random but reproducible values, and returns the values it
wrote so a test can compare what comes back out of the bag against them. The model is
`<mujoco/>` (no bodies), so there is no /tf or /robot_description.

Log times: step t's state at `T0 + t * dt`, its action 1 us later, its reward terms 2 us, its
episode events 3 us and its base poses 4 us later (as if received one after another); the robot
description at `T0 - 1000`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rollout.bag import BagWriter
from rollout.bag.compression import Compression
from rollout.export.records import RolloutArrays, write_records
from rollout.messages import RolloutMessages, RunIdentity
from rollout.sim import EnvInfo
from rollout.topics import ACTION, BASE_POSES, EPISODES, REWARD_TERMS, ROBOT, STATE

T0 = 1_750_000_000_000_000_000  # a wall-clock epoch time, ns (Foxglove dislikes times near zero)
DELAYS = {STATE: 0, ACTION: 1000, REWARD_TERMS: 2000, EPISODES: 3000, BASE_POSES: 4000}
CORE_TOPICS = (ROBOT, STATE, ACTION, REWARD_TERMS)
"""The robot description and the three per-step topics every rollout bag has: pass as `topics=`
for a bag without episode events and base poses (a simpler layout for player and reader tests)."""


@dataclass
class Recorded:
    """What `write_synthetic_rollout` wrote, per step (all steps, dropped ones included)."""

    steps: np.ndarray  # [T] int64
    sim_time: np.ndarray  # [T] float64
    obs: np.ndarray  # [T, N, O] float32
    act: np.ndarray  # [T, N, A]
    rew: np.ndarray  # [T, N]
    terms: dict[str, np.ndarray]  # name -> [T, N]
    base_pos: np.ndarray  # [T, N, 3]
    base_quat: np.ndarray  # [T, N, 4] x, y, z, w
    joint_pos: np.ndarray  # [T, N, J]
    body_poses: np.ndarray  # [T, N, B, 7]
    done: np.ndarray  # [T, N] bool
    terminated: np.ndarray
    truncated: np.ndarray
    dt: float
    log_times: np.ndarray  # [T] int64 ns


def write_synthetic_rollout(
    path: str | os.PathLike[str],
    *,
    steps: int = 20,
    num_envs: int = 4,
    obs_dim: int = 11,
    act_dim: int = 3,
    num_joints: int = 5,
    num_bodies: int = 3,
    term_names: Sequence[str] = ("reward_forward", "reward_ctrl"),
    dt: float = 0.015,
    seed: int = 0,
    compression: Compression = "none",
    chunk_size: int | None = None,
    drop: dict[str, Sequence[int]] | None = None,
    first_step: int = 0,
    topics: Collection[str] | None = None,
) -> Recorded:
    """Record a synthetic rollout into a new bag at `path`.

    Args:
        drop: {topic: [step indices]} messages not written (as if the recorder missed them).
        first_step: step number of the first control step.
        topics: write only these topics (default: every topic the sim publishes), e.g. `CORE_TOPICS`.
    """
    rng = np.random.default_rng(seed)
    T, N = steps, num_envs
    f32 = np.float32
    quat = rng.normal(size=(T, N, 4)).astype(f32)
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    terms = {name: rng.normal(size=(T, N)).astype(f32) for name in term_names}
    terminated = rng.random((T, N)) < 0.05
    truncated = (rng.random((T, N)) < 0.05) & ~terminated
    rec = Recorded(
        steps=np.arange(first_step, first_step + T, dtype=np.int64),
        sim_time=np.arange(first_step, first_step + T) * dt,
        obs=rng.normal(size=(T, N, obs_dim)).astype(f32),
        act=rng.uniform(-0.4, 0.4, size=(T, N, act_dim)).astype(f32),
        rew=sum(terms.values(), np.zeros((T, N), f32)).astype(f32),
        terms=terms,
        base_pos=rng.normal(size=(T, N, 3)).astype(f32),
        base_quat=quat,
        joint_pos=rng.normal(size=(T, N, num_joints)).astype(f32),
        body_poses=rng.normal(size=(T, N, num_bodies, 7)).astype(f32),
        done=terminated | truncated,
        terminated=terminated,
        truncated=truncated,
        dt=dt,
        log_times=T0 + np.arange(T, dtype=np.int64) * int(dt * 1e9),
    )
    info = EnvInfo(
        name="synthetic",
        num_envs=N,
        obs_dim=obs_dim,
        act_dim=act_dim,
        dt=dt,
        body_names=tuple(f"body{b}" for b in range(num_bodies)),
        joint_names=tuple(f"joint{j}" for j in range(num_joints)),
        action_names=tuple(f"act{a}" for a in range(act_dim)),
        reward_term_names=tuple(term_names),
        model_format="mjcf",
        model_text="<mujoco/>",  # no bodies: viewers draw one sphere per body; no /tf or URDF
        env_spacing=2.0,
    )
    messages = RolloutMessages(info, RunIdentity(seed=seed, policy="zero"), tf_envs=())
    arrays = RolloutArrays(
        steps=rec.steps, sim_time=rec.sim_time, obs=rec.obs, act=rec.act, rew=rec.rew,
        terms=np.stack(list(terms.values()), axis=1) if terms else np.zeros((T, 0, N), f32),
        base_pos=rec.base_pos, base_quat=rec.base_quat, done=rec.done, terminated=rec.terminated,
        truncated=rec.truncated, joint_pos=rec.joint_pos, body_poses=rec.body_poses,
    )  # fmt: skip
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    with BagWriter(Path(path), compression=compression, **kwargs) as bag:
        write_records(
            bag, messages, arrays.records(), rec.log_times, latched_stamp=T0 - 1000,
            topics=topics, delays=DELAYS, drop={k: set(v) for k, v in (drop or {}).items()},
        )  # fmt: skip
    return rec
