"""Policies: load a checkpoint (or pick a built-in) and run it on numpy observations.

`make_policy(spec, obs_dim=..., act_dim=...)` returns a `Policy`, a callable that maps
obs [N, obs_dim] float32 to actions [N, act_dim] float32 (numpy in, numpy out, new arrays).
The format is read from the file's content, not its name:

- `*.pt2`, a `torch.export` program (the main format): self-contained, no Python class
  needed to load it; export it with a dynamic batch dimension (`export_policy` does).
  Loaded with every unpickling restricted to tensors (see `_load_export_weights_only`).
- a `state_dict` (`torch.save(model.state_dict(), "policy.pt")`) with a JSON file next to it
  (`policy.json`, or `policy.pt.json`) that describes an MLP; see `MLPConfig`. Loaded with
  `torch.load(weights_only=True)`, which cannot run code from the file.
- TorchScript (`torch.jit.save`), legacy.
- `package.module:callable`: `callable(obs_dim=..., act_dim=..., seed=...)` (it is passed the
  keywords it accepts) returns either a `torch.nn.Module` (called with a float32 tensor) or
  any callable taking and returning numpy arrays.
- built-ins `zero` (all-zero actions) and `random` (uniform within the action bounds, seeded),
  and `demo`, the `.pt2` shipped in `rollout/data/` (see `loaders.BUILTIN_CHECKPOINTS`).
- `checkpoint`: the policy that came with the env (`env.policy`), e.g. the agent of a
  ProtoMotions checkpoint loaded with `env:=protomotions:<last.ckpt>` (`policy_for_env`).

A whole pickled `nn.Module` (`torch.save(model)`) is refused without being unpickled:
unpickling runs code chosen by whoever wrote the file. A model may return a tensor, a
tuple/list (the first item is the action) or a dict (`mean_action`, `action` or `actions`).

Torch is imported only for the formats that need it, and runs with `threads` threads
(default 1: more threads stall a loop that alternates physics and small matrix products).

Modules: `base` (the `Policy` callable, size checks), `formats` (telling formats apart),
`safe_load` (loading without unpickling code), `mlp` (the state_dict actor), `export`
(writing policies), `loaders` (`make_policy`).
"""

from rollout.policy.base import Policy, PolicyFormat
from rollout.policy.export import export_policy, save_mlp_checkpoint
from rollout.policy.formats import detect_format, sha256_file
from rollout.policy.loaders import ENV_POLICY, make_policy, policy_for, policy_for_env
from rollout.policy.mlp import ACTIVATIONS, MLPConfig, build_mlp

__all__ = [
    "ACTIVATIONS",
    "ENV_POLICY",
    "MLPConfig",
    "Policy",
    "PolicyFormat",
    "build_mlp",
    "detect_format",
    "export_policy",
    "make_policy",
    "policy_for",
    "policy_for_env",
    "save_mlp_checkpoint",
    "sha256_file",
]
