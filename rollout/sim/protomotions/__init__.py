"""ProtoMotions (NVlabs/ProtoMotions) in rollout: its envs as `VectorEnv`s, its checkpoints in the loop.

Two ways in:

- A checkpoint, one command: `env:=protomotions:results/<run>/last.ckpt` builds the env and
  the agent the way ProtoMotions' `inference_agent.py` does, and the policy is the checkpoint's
  (`policy:=checkpoint`, the default for such an env). Checkpoints are pickles, so this needs
  `trust_checkpoint:=true` (see `load_checkpoint`).
- An env you built yourself: wrap it, `ProtoMotionsV3Env(env)` (3.x and main) or
  `ProtoMotionsV2Env(env)`, and hand it to rollout from a factory (`env:=my_module:make_env`)
  or to `RolloutRecorder(env, max_steps=..., out=...).run(policy)`.

What the adapters read from ProtoMotions, per version, is in `rollout.sim.protomotions.adapter`.
"""

from rollout.sim.protomotions.adapter import ProtoMotionsV2Env, ProtoMotionsV3Env
from rollout.sim.protomotions.checkpoint import CHECKPOINT_PREFIX, is_checkpoint_spec, load_checkpoint

__all__ = ["CHECKPOINT_PREFIX", "ProtoMotionsV2Env", "ProtoMotionsV3Env", "is_checkpoint_spec", "load_checkpoint"]
