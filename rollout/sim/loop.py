"""The stepping loop: policy in the loop, one record per control step, no middleware.

Used by the sim node (which publishes each record) and by programmatic recorders:

    env = make_env("humanoid", num_envs=16, seed=0)
    policy = make_policy("policy.pt2", obs_dim=env.info.obs_dim, act_dim=env.info.act_dim)
    for rec in run_steps(env, policy, seed=0, steps=1000):
        ...

Record t holds obs_t, the poses of state t, action_t = policy(obs_t), and reward_t, terms_t,
terminated_t, truncated_t of the transition from state t (the NPZ convention: obs[t], act[t],
rew[t], done[t] belong together). Envs that end at step t are reset by the env; record t+1
holds their first observation of the next episode, and record t lists them in `episodes`
with the return and length of the episode that ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from rollout.errors import EnvError, PolicyError
from rollout.sim.protocol import Poses, StepOutput, VectorEnv


@dataclass(frozen=True)
class EpisodeEnds:
    """Episodes that ended at one control step, E of them."""

    env_ids: np.ndarray
    """[E] uint32, which envs."""
    returns: np.ndarray
    """[E] float32, undiscounted return of each finished episode."""
    lengths: np.ndarray
    """[E] uint32, control steps in each finished episode."""
    terminated: np.ndarray
    """[E] bool, True: ended in a terminal state; False: cut by the time limit."""
    reasons: tuple[str, ...] = ()
    """[E] why each episode ended, as the env names it (several reasons joined by "+");
    empty when the env does not say (see `reason_names`)."""
    final_poses: Poses | None = None
    """The E envs' terminal poses (their last state before the reset), or None when unknown."""

    def __len__(self) -> int:
        return int(self.env_ids.size)

    def reason_names(self) -> list[str]:
        """[E] why each episode ended: the env's names, else "terminated" or "truncated"."""
        if len(self.reasons) == len(self):
            return list(self.reasons)
        return ["terminated" if t else "truncated" for t in self.terminated]


@dataclass(frozen=True)
class StepRecord:
    """Everything about control step `step` of N envs; arrays are never written again."""

    step: int
    """Control step index since the run started (reset is step 0's state)."""
    sim_time: float
    """step * dt, seconds."""
    obs: np.ndarray
    """[N, O] float32, observations of state t (what the policy saw)."""
    poses: Poses
    """Poses of state t."""
    action: np.ndarray
    """[N, A] float32, actions applied (zeros while the policy is switched off)."""
    policy_enabled: bool
    """False when the actions are zeros because the policy was switched off."""
    reward: np.ndarray
    """[N] float32, total reward of the transition from state t."""
    terms: np.ndarray
    """[K, N] float32, reward terms in `EnvInfo.reward_term_names` order."""
    terminated: np.ndarray
    """[N] bool."""
    truncated: np.ndarray
    """[N] bool."""
    done: np.ndarray
    """[N] bool, terminated | truncated."""
    episodes: EpisodeEnds
    """Episodes that ended at this step (their envs start afresh at step + 1)."""


def run_steps(
    env: VectorEnv,
    policy: Callable[[np.ndarray], np.ndarray],
    *,
    seed: int = 0,
    steps: int | None = None,
    policy_enabled: Callable[[], bool] = lambda: True,
) -> Iterator[StepRecord]:
    """Reset `env` with `seed`, then step it with `policy` in the loop, yielding one
    `StepRecord` per control step: `steps` of them, or forever when `steps` is None.

    `policy_enabled()` is asked before each step; when it returns False the actions are zeros
    and the policy is not called. The caller owns `env` (this does not close it).
    """
    info = env.info
    n, act_dim = info.num_envs, info.act_dim
    copy = not getattr(env, "fresh_arrays", False)  # foreign envs may reuse their buffers
    obs = _checked_obs(env.reset(seed), n, info.obs_dim, copy)
    poses = _own(env.poses(), copy)
    returns = np.zeros(n, np.float64)
    lengths = np.zeros(n, np.int64)
    zeros = np.zeros((n, act_dim), np.float32)
    zeros.flags.writeable = False
    t = 0
    while steps is None or t < steps:
        enabled = bool(policy_enabled())
        if enabled:
            action = np.array(policy(obs), dtype=np.float32)  # a copy: the caller may reuse its buffer
            if action.shape != (n, act_dim):
                raise PolicyError(f"policy returned actions of shape {action.shape}, the env takes ({n}, {act_dim})")
        else:
            action = zeros
        out = env.step(action)
        reward, terms, terminated, truncated = _checked_step(out, n, len(info.reward_term_names), copy)
        done = terminated | truncated
        returns += reward
        lengths += 1
        ended = np.flatnonzero(done)
        episodes = EpisodeEnds(
            env_ids=ended.astype(np.uint32),
            returns=returns[ended].astype(np.float32),
            lengths=lengths[ended].astype(np.uint32),
            terminated=terminated[ended],
            reasons=_reasons(out.end_reasons, info.termination_names, ended, terminated) if ended.size else (),
            final_poses=out.final_poses.rows(ended) if ended.size and out.final_poses is not None else None,
        )
        returns[ended] = 0.0
        lengths[ended] = 0
        yield StepRecord(
            step=t,
            sim_time=t * info.dt,
            obs=obs,
            poses=poses,
            action=action,
            policy_enabled=enabled,
            reward=reward,
            terms=terms,
            terminated=terminated,
            truncated=truncated,
            done=done,
            episodes=episodes,
        )
        obs = _checked_obs(out.obs, n, info.obs_dim, copy)
        poses = _own(env.poses(), copy)
        t += 1


def _reasons(flags: np.ndarray | None, names: tuple[str, ...], ended: np.ndarray, terminated: np.ndarray) -> tuple[str, ...]:
    """Each ended env's flagged reason names joined by "+"; unflagged ends fall back to
    "terminated" / "truncated" (e.g. a time limit the env does not name)."""
    if flags is None or not names:
        return ()
    flags = np.asarray(flags, bool).reshape(len(names), -1)[:, ended]
    out = []
    for k, env in enumerate(ended):
        named = [names[r] for r in np.flatnonzero(flags[:, k])]
        out.append("+".join(named) if named else ("terminated" if terminated[env] else "truncated"))
    return tuple(out)


def _checked_obs(obs: np.ndarray, n: int, obs_dim: int, copy: bool) -> np.ndarray:
    obs = np.array(obs, dtype=np.float32, copy=copy or None)
    if obs.shape != (n, obs_dim):
        raise EnvError(f"env returned observations of shape {obs.shape}, its info says ({n}, {obs_dim})")
    return obs


def _checked_step(
    out: StepOutput, n: int, k: int, copy: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    reward = np.array(out.reward, dtype=np.float32, copy=copy or None).reshape(n)
    terms = np.array(out.terms, dtype=np.float32, copy=copy or None).reshape(k, n)
    terminated = np.array(out.terminated, dtype=bool, copy=copy or None).reshape(n)
    truncated = np.array(out.truncated, dtype=bool, copy=copy or None).reshape(n)
    return reward, terms, terminated, truncated


def _own(p: Poses, copy: bool) -> Poses:
    if not copy:
        return p
    return Poses(
        base_pos=np.array(p.base_pos, np.float32),
        base_quat=np.array(p.base_quat, np.float32),
        joint_pos=np.array(p.joint_pos, np.float32),
        body_poses=np.array(p.body_poses, np.float32),
    )
