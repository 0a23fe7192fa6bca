"""The vector-env protocol: what `rollout` needs from a simulator with N parallel envs.

Any object with these members works as an env (duck typing; `VectorEnv` is a
`typing.Protocol`, so there is nothing to subclass). Give one to `rollout` with
`env:=my_package.my_module:make_env`, where `make_env(num_envs=..., seed=...)` returns it.

Shapes use N = `info.num_envs`, O = `info.obs_dim`, A = `info.act_dim`,
K = `len(info.reward_term_names)`, J = `len(info.joint_names)`, B = `len(info.body_names)`.

Contract, in the order a run uses it:

1. `info` is fixed for the env's life (it describes the env; it is not state).
2. `reset(seed)` puts every env at the start of an episode and returns obs [N, O] float32.
   Env i draws its initial state from `seed + i` (the Gymnasium convention), so one seed
   fixes the whole run.
3. `step(action)` takes action [N, A] float32 (without writing to it) and returns a
   `StepOutput`. Envs whose episode ended at this step (terminated or truncated) are
   reset inside `step`: `StepOutput.obs` holds their *first* observation of the next
   episode, while `reward`, `terms`, `terminated` and `truncated` describe the transition
   that ended the episode. Resets after the first keep drawing from each env's own random
   stream (no reseeding), so a seeded run is deterministic.
   An env may also say why its episodes ended (`end_reasons`, rows named by
   `info.termination_names`) and where (`final_poses`, the terminal state before the reset);
   both are optional and end up in /rollout/episodes.
4. `poses()` returns the `Poses` of the state the last returned obs was taken from
   (after a reset, the new episode's first state).
5. `close()` frees the simulator; calling it twice is harmless.

Arrays returned by `reset`, `step` and `poses` belong to the caller: the env must not
write into them afterwards. An env that always returns new arrays (not views of buffers it
reuses) may say so with a class attribute `fresh_arrays = True`; the stepping loop then
skips its defensive copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

ModelFormat = Literal["mjcf", "urdf", ""]


@dataclass(frozen=True)
class EnvInfo:
    """Everything fixed about an env: sizes, names, time step and the model to draw."""

    name: str
    """Env identity, e.g. "mujoco:Humanoid-v5" or "gym:Ant-v5"."""
    num_envs: int
    """N, the number of parallel envs."""
    obs_dim: int
    """O, the length of one env's observation vector."""
    act_dim: int
    """A, the length of one env's action vector."""
    dt: float
    """Seconds of simulated time per control step (one `step` call)."""
    body_names: tuple[str, ...] = ()
    """Names of the B bodies in `Poses.body_poses`, in that order (the world body excluded)."""
    joint_names: tuple[str, ...] = ()
    """Names of the J joints in `Poses.joint_pos`, in that order (the floating base excluded)."""
    action_names: tuple[str, ...] = ()
    """Names of the A action dimensions (for MuJoCo: actuator names, whose order may differ
    from the joint order). Empty when the env does not name them."""
    reward_term_names: tuple[str, ...] = ()
    """Names of the K reward terms in `StepOutput.terms`, in that order."""
    termination_names: tuple[str, ...] = ()
    """Names of the R reasons an episode can end for, rows of `StepOutput.end_reasons`; empty
    when the env does not name them (episodes then end "terminated" or "truncated")."""
    model_format: ModelFormat = ""
    """Format of `model_text`: "mjcf", "urdf", or "" when there is no model to draw."""
    model_text: str = ""
    """The robot model (MJCF or URDF text), self-contained, for viewers to draw from."""
    env_spacing: float = 0.0
    """Metres between envs when a viewer draws them side by side; 0 when the env already
    lays its envs out in the world (poses are then drawn as they are)."""
    action_low: np.ndarray | None = field(default=None, compare=False)
    """[A] float32 lower action bound, or None when unbounded or unknown."""
    action_high: np.ndarray | None = field(default=None, compare=False)
    """[A] float32 upper action bound, or None when unbounded or unknown."""

    def __post_init__(self) -> None:
        for name in ("body_names", "joint_names", "action_names", "reward_term_names", "termination_names"):
            object.__setattr__(self, name, tuple(str(s) for s in getattr(self, name)))
        for name in ("action_low", "action_high"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float32).reshape(self.act_dim)
                value.flags.writeable = False
                object.__setattr__(self, name, value)


@dataclass
class StepOutput:
    """The result of one `VectorEnv.step` over N envs."""

    obs: np.ndarray
    """[N, O] float32, observations after the step; done envs already reset (see module doc)."""
    reward: np.ndarray
    """[N] float32, total reward of the transition."""
    terms: np.ndarray
    """[K, N] float32, reward terms in `EnvInfo.reward_term_names` order."""
    terminated: np.ndarray
    """[N] bool, the episode ended in a terminal state (e.g. the humanoid fell)."""
    truncated: np.ndarray
    """[N] bool, the episode was cut by a time limit."""
    end_reasons: np.ndarray | None = None
    """[R, N] bool: which of `EnvInfo.termination_names` ended each env's episode at this step
    (several may hold at once); None when the env does not say why."""
    final_poses: Poses | None = None
    """Poses of the state each env reached at this step, before an ended env was reset (the
    terminal state `obs` no longer shows); only the rows of envs that ended are read. None when
    the env cannot tell it."""


@dataclass
class Poses:
    """Where everything is, for drawing: N envs, world frame, quaternions x, y, z, w."""

    base_pos: np.ndarray
    """[N, 3] float32, floating-base position, metres."""
    base_quat: np.ndarray
    """[N, 4] float32, floating-base orientation, x, y, z, w."""
    joint_pos: np.ndarray
    """[N, J] float32, joint positions (radians or metres) in `EnvInfo.joint_names` order."""
    body_poses: np.ndarray
    """[N, B, 7] float32, x, y, z, qx, qy, qz, qw of each body in `EnvInfo.body_names` order."""

    def rows(self, ids: np.ndarray) -> Poses:
        """These envs' poses (new arrays), e.g. the ones whose episode ended."""
        return Poses(
            base_pos=np.array(self.base_pos[ids], np.float32),
            base_quat=np.array(self.base_quat[ids], np.float32),
            joint_pos=np.array(self.joint_pos[ids], np.float32),
            body_poses=np.array(self.body_poses[ids], np.float32),
        )

    @classmethod
    def empty(cls, num_envs: int) -> Poses:
        """Poses of an env with nothing to draw: base at the origin, identity rotation."""
        quat = np.zeros((num_envs, 4), np.float32)
        quat[:, 3] = 1.0
        return cls(
            base_pos=np.zeros((num_envs, 3), np.float32),
            base_quat=quat,
            joint_pos=np.zeros((num_envs, 0), np.float32),
            body_poses=np.zeros((num_envs, 0, 7), np.float32),
        )


@runtime_checkable
class VectorEnv(Protocol):
    """N parallel envs stepped together; see the module docstring for the contract."""

    @property
    def info(self) -> EnvInfo:
        """Sizes, names, dt and the model; fixed for the env's life."""
        ...

    def reset(self, seed: int) -> np.ndarray:
        """Start every env afresh, env i from `seed + i`; return obs [N, O] float32."""
        ...

    def step(self, action: np.ndarray) -> StepOutput:
        """Apply action [N, A] float32 for one control step; reset envs that end."""
        ...

    def poses(self) -> Poses:
        """Poses of the state the last returned obs came from."""
        ...

    def close(self) -> None:
        """Free the simulator; safe to call twice."""
        ...


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    """[..., 4] w, x, y, z (MuJoCo) -> new float32 array x, y, z, w (ROS, files)."""
    return np.ascontiguousarray(np.roll(np.asarray(q, dtype=np.float32), -1, axis=-1))


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    """[..., 4] x, y, z, w -> new float32 array w, x, y, z."""
    return np.ascontiguousarray(np.roll(np.asarray(q, dtype=np.float32), 1, axis=-1))
