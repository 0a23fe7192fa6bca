"""Simulation without middleware: the vector-env protocol, the envs, and the stepping loop.

    from rollout.sim import make_env, run_steps
    from rollout.policy import make_policy

    env = make_env("humanoid", num_envs=16, seed=0)
    policy = make_policy("zero", obs_dim=env.info.obs_dim, act_dim=env.info.act_dim)
    for rec in run_steps(env, policy, seed=0, steps=100):
        print(rec.step, rec.reward.mean(), len(rec.episodes))

Env modules import their simulator only when used (`rollout.sim.humanoid` imports MuJoCo,
`rollout.sim.adapters` Gymnasium, `rollout.sim.protomotions` torch).
"""

from rollout.sim.factory import DEFAULT_ENV, check_env, make_env
from rollout.sim.loop import EpisodeEnds, StepRecord, run_steps
from rollout.sim.protocol import EnvInfo, Poses, StepOutput, VectorEnv

__all__ = [
    "DEFAULT_ENV",
    "EnvInfo",
    "EpisodeEnds",
    "Poses",
    "StepOutput",
    "StepRecord",
    "VectorEnv",
    "check_env",
    "make_env",
    "run_steps",
]
