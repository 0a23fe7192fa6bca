"""A synthetic rollout recorded straight into a bag, for tests and benchmarks.

Writes what the sim node publishes (RobotDescription once, then State, Action and RewardTerms
per control step) with random but reproducible values, and returns the values it wrote so a
test can compare what comes back out of the bag against them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rollout import __version__
from rollout.bag import BagWriter
from rollout.bag.compression import Compression
from rollout.codec import get_type, serialize
from rollout.export.to_npz import ACTION, REWARD, ROBOT, STATE

T0 = 1_750_000_000_000_000_000  # a wall-clock epoch time, ns (Foxglove dislikes times near zero)


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
) -> Recorded:
    """Record a synthetic rollout into a new bag at `path`.

    Args:
        drop: {topic: [step indices]} messages not written (as if the recorder missed them).
        first_step: step number of the first control step.
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
    drop = {k: set(v) for k, v in (drop or {}).items()}
    State = get_type("rollout_msgs/msg/State")
    Action = get_type("rollout_msgs/msg/Action")
    RewardTerms = get_type("rollout_msgs/msg/RewardTerms")
    RewardTerm = get_type("rollout_msgs/msg/RewardTerm")
    Robot = get_type("rollout_msgs/msg/RobotDescription")
    Header = get_type("std_msgs/msg/Header")

    def header(ns: int) -> object:
        h = Header(frame_id="world")
        h.stamp.sec, h.stamp.nanosec = ns // 1_000_000_000, ns % 1_000_000_000
        return h

    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    with BagWriter(Path(path), compression=compression, **kwargs) as bag:
        bag.add_topic(ROBOT, "rollout_msgs/msg/RobotDescription", latched=True)
        bag.add_topic(STATE, "rollout_msgs/msg/State")
        bag.add_topic(ACTION, "rollout_msgs/msg/Action")
        bag.add_topic(REWARD, "rollout_msgs/msg/RewardTerms")
        robot = Robot(
            header=header(T0 - 1000), model_format="mjcf", model="<mujoco/>",
            body_names=[f"body{b}" for b in range(num_bodies)], joint_names=[f"joint{j}" for j in range(num_joints)],
            action_names=[f"act{a}" for a in range(act_dim)], reward_term_names=list(term_names), dt=dt,
            num_envs=N, obs_dim=obs_dim, act_dim=act_dim, env_spacing=2.0, env="synthetic", seed=seed,
            policy="zero", policy_sha256="", rollout_version=__version__,
        )  # fmt: skip
        bag.write(ROBOT, serialize(robot), T0 - 1000)
        for t in range(T):
            ns, step, sim_time = int(rec.log_times[t]), int(rec.steps[t]), float(rec.sim_time[t])
            if t not in drop.get(STATE, ()):
                msg = State(
                    header=header(ns), step=step, sim_time=sim_time, num_envs=N, obs_dim=obs_dim,
                    num_joints=num_joints, num_bodies=num_bodies, obs=rec.obs[t], base_pos=rec.base_pos[t],
                    base_quat=rec.base_quat[t], joint_pos=rec.joint_pos[t], body_poses=rec.body_poses[t],
                    done=rec.done[t], terminated=rec.terminated[t], truncated=rec.truncated[t],
                )  # fmt: skip
                bag.write(STATE, serialize(msg), ns, sequence=t + 1)
            if t not in drop.get(ACTION, ()):
                msg = Action(
                    header=header(ns), step=step, sim_time=sim_time, num_envs=N, act_dim=act_dim,
                    policy_enabled=True, action=rec.act[t],
                )  # fmt: skip
                bag.write(ACTION, serialize(msg), ns + 1000, sequence=t + 1)
            if t not in drop.get(REWARD, ()):
                msg = RewardTerms(
                    header=header(ns), step=step, sim_time=sim_time,
                    terms=[RewardTerm(name=k, mean=float(v[t].mean()), value=v[t]) for k, v in terms.items()],
                    total_mean=float(rec.rew[t].mean()), total=rec.rew[t],
                )  # fmt: skip
                bag.write(REWARD, serialize(msg), ns + 2000, sequence=t + 1)
    return rec
