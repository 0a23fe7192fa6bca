"""A cheap env for benchmarks: any N and obs_dim, negligible stepping cost, deterministic.

It exercises everything downstream of the simulator (messages, recorder, bag size, viewer)
at sizes MuJoCo on a CPU cannot reach, e.g. `SyntheticEnv(4096, obs_dim=376)`. Observations
are windows over a fixed random table (so they compress like real data would not: use it
for throughput, not for compression ratios); bodies move in a smooth pattern; episodes are
truncated every `episode_length` steps, staggered across envs. `synthetic:humanoid` carries
Gymnasium's Humanoid model (its 13 bodies), so a viewer and the video can draw it.
"""

from __future__ import annotations

import numpy as np

from rollout.errors import EnvError
from rollout.sim.protocol import EnvInfo, Poses, StepOutput

_WINDOWS = 64  # distinct observation windows before the pattern repeats


class SyntheticEnv:
    """N envs of made-up data following the `VectorEnv` protocol."""

    fresh_arrays = True

    def __init__(
        self,
        num_envs: int = 4096,
        *,
        seed: int = 0,
        obs_dim: int = 376,
        act_dim: int = 17,
        num_bodies: int = 13,
        num_joints: int = 17,
        episode_length: int = 1000,
        dt: float = 0.015,
        model_text: str = "",
        model_format: str = "",
        body_names: tuple[str, ...] | None = None,
    ) -> None:
        if min(num_envs, obs_dim, act_dim, episode_length) < 1 or min(num_bodies, num_joints) < 0:
            raise EnvError("synthetic env sizes must be positive")
        self.num_envs = num_envs
        self._episode_length = episode_length
        self._elapsed = np.zeros(num_envs, np.int64)
        self._step = 0
        self._table = np.zeros((num_envs + _WINDOWS, obs_dim), np.float32)
        self._offsets = np.zeros((num_bodies, 3), np.float32)
        self._phase = np.arange(num_joints, dtype=np.float32) * 0.3
        self._nb, self._nj = num_bodies, num_joints
        self._spacing = 2.0
        self.info = EnvInfo(
            name=f"synthetic:obs{obs_dim}",
            num_envs=num_envs,
            obs_dim=obs_dim,
            act_dim=act_dim,
            dt=dt,
            body_names=body_names or tuple(f"body_{i}" for i in range(num_bodies)),
            joint_names=tuple(f"joint_{i}" for i in range(num_joints)),
            action_names=tuple(f"action_{i}" for i in range(act_dim)),
            reward_term_names=("reward_alive", "reward_action"),
            env_spacing=self._spacing,
            action_low=np.full(act_dim, -1.0, np.float32),
            action_high=np.full(act_dim, 1.0, np.float32),
            model_format=model_format,  # type: ignore[arg-type]
            model_text=model_text,
        )
        self.reset(seed)

    def reset(self, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        self._table = rng.standard_normal(self._table.shape, dtype=np.float32)
        self._offsets = rng.uniform(-0.5, 0.5, self._offsets.shape).astype(np.float32)
        # stagger episode ends so that a few envs reset at most steps, as in real runs
        self._elapsed = np.arange(self.num_envs, dtype=np.int64) * 7919 % self._episode_length
        self._step = 0
        return self._obs()

    def step(self, action: np.ndarray) -> StepOutput:
        action = np.asarray(action, np.float32)
        if action.shape != (self.num_envs, self.info.act_dim):
            raise EnvError(f"action has shape {action.shape}, expected ({self.num_envs}, {self.info.act_dim})")
        self._step += 1
        self._elapsed += 1
        truncated = self._elapsed >= self._episode_length
        self._elapsed[truncated] = 0
        alive = np.ones(self.num_envs, np.float32)
        effort = -0.01 * np.square(action).sum(axis=1, dtype=np.float32)
        return StepOutput(
            obs=self._obs(),
            reward=alive + effort,
            terms=np.stack([alive, effort]),
            terminated=np.zeros(self.num_envs, bool),
            truncated=truncated,
        )

    def poses(self) -> Poses:
        n = self.num_envs
        t = self._elapsed.astype(np.float32) * self.info.dt
        base = np.zeros((n, 3), np.float32)
        base[:, 0] = 0.5 * t
        base[:, 2] = 1.0
        quat = np.zeros((n, 4), np.float32)
        quat[:, 3] = 1.0
        bodies = np.empty((n, self._nb, 7), np.float32)
        bodies[:, :, :3] = base[:, None, :] + self._offsets[None]
        bodies[:, :, 3:] = quat[:, None, :]
        joints = np.sin(t[:, None] + self._phase[None])
        return Poses(base_pos=base, base_quat=quat, joint_pos=joints, body_poses=bodies)

    def close(self) -> None:
        pass

    def _obs(self) -> np.ndarray:
        o = self._step % _WINDOWS
        return self._table[o : o + self.num_envs].copy()
