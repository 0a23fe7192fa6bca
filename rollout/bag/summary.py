"""`rollout_summary(path)`: what a recording says about the rollout, for `rollout bag info`.

Reads the latched /rollout/robot (env, N, policy), the small per-step /rollout/reward_terms
(steps, sim time, the mean of each term) and /rollout/episodes (returns and lengths of the
episodes that ended), each through the index into numpy; never the big /rollout/state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from rollout import topics
from rollout.bag.reader import Bag


@dataclass(frozen=True)
class RolloutSummary:
    env: str
    num_envs: int
    seed: int
    policy: str
    policy_sha256: str
    dt: float
    steps: int
    """Control steps recorded (messages on /rollout/reward_terms)."""
    episode_returns: np.ndarray
    """[E] float32, return of every episode that ended."""
    episode_lengths: np.ndarray
    """[E] int64, its length in control steps."""
    episode_terminated: np.ndarray
    """[E] bool, True: ended in a terminal state; False: cut by the time limit."""
    term_means: dict[str, float]
    """Each reward term's mean over envs and steps, and `total` for the total reward."""

    @property
    def sim_time(self) -> float:
        return self.steps * self.dt

    def describe(self) -> str:
        """Lines in `ros2 bag info`'s layout."""
        lines = [
            f"Rollout:           {self.env}, {self.num_envs} envs, seed {self.seed}",
            f"Policy:            {self.policy or '?'}"
            + (f" (sha256 {self.policy_sha256})" if self.policy_sha256 else ""),
            f"Steps:             {self.steps} ({self.sim_time:.2f} s of sim time, dt {self.dt:g} s)",
        ]
        n = self.episode_returns.size
        if n:
            ended = int(self.episode_terminated.sum())
            r, length = self.episode_returns, self.episode_lengths
            lines += [
                f"Episodes ended:    {n} ({ended} terminated, {n - ended} at the time limit), "
                f"mean length {length.mean():.1f} steps",
                f"Return:            mean {r.mean():.2f}, min {r.min():.2f}, max {r.max():.2f}",
            ]
        else:
            lines.append("Episodes ended:    0")
        if self.term_means:
            terms = [f"{name} {value:.4g}" for name, value in self.term_means.items()]
            lines.append("Reward per step:   " + " | ".join(terms))
        return "\n".join(lines) + "\n"


def rollout_summary(path: str | os.PathLike[str]) -> RolloutSummary | None:
    """The summary of the recording at `path`; None when it holds no /rollout/robot."""
    with Bag(path, recover=True) as bag:
        if topics.ROBOT not in bag.topics or bag.count(topics.ROBOT) == 0:
            return None
        robot = bag.decode(topics.ROBOT, 0)
        steps, term_means = 0, {}
        if topics.REWARD_TERMS in bag.topics and bag.count(topics.REWARD_TERMS):
            steps = bag.count(topics.REWARD_TERMS)
            term_means = _term_means(bag)
        returns, lengths, terminated = _episodes(bag)
        return RolloutSummary(
            env=robot.env,
            num_envs=int(robot.num_envs),
            seed=int(robot.seed),
            policy=robot.policy,
            policy_sha256=robot.policy_sha256,
            dt=float(robot.dt),
            steps=steps,
            episode_returns=returns,
            episode_lengths=lengths,
            episode_terminated=terminated,
            term_means=term_means,
        )


def _term_means(bag: Bag) -> dict[str, float]:
    """Mean of each term's per-step means (every step has all N envs), and of the total."""
    total = bag.read_arrays(topics.REWARD_TERMS, ["total_mean"])["total_mean"]
    sums: dict[str, float] = {}
    for m in bag.iter_decoded(topics.REWARD_TERMS):  # K small terms per message
        for term in m.terms:
            sums[term.name] = sums.get(term.name, 0.0) + float(term.mean)
    n = max(total.size, 1)
    return {**{name: s / n for name, s in sums.items()}, "total": float(total.astype(np.float64).mean())}


def _episodes(bag: Bag) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if topics.EPISODES not in bag.topics or bag.count(topics.EPISODES) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, bool)
    returns, lengths, terminated = [], [], []
    for m in bag.iter_decoded(topics.EPISODES):
        returns.append(np.array(m.returns, np.float32))
        lengths.append(np.array(m.lengths, np.int64))
        terminated.append(np.array(m.terminated, bool))
    return np.concatenate(returns), np.concatenate(lengths), np.concatenate(terminated)
