"""The `Policy` callable and what every format shares: torch threads, numpy in and out, size checks."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

from rollout.errors import PolicyError

PolicyFormat = Literal["zero", "random", "callable", "pt2", "state_dict", "torchscript", "protomotions"]
DICT_ACTION_KEYS = ("mean_action", "action", "actions")

class Policy:
    """A loaded policy: `policy(obs)` with obs [N, obs_dim] float32 -> actions [N, act_dim] float32."""

    def __init__(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        *,
        name: str,
        format: PolicyFormat,
        sha256: str = "",
        obs_dim: int | None = None,
        act_dim: int | None = None,
    ) -> None:
        self._fn = fn
        self.name = name
        """Checkpoint path as given, a `module:callable` spec, or a built-in name."""
        self.format: PolicyFormat = format
        self.sha256 = sha256
        """sha256 of the checkpoint file; empty for built-ins and callables."""
        self.obs_dim = obs_dim
        self.act_dim = act_dim

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.ascontiguousarray(obs, dtype=np.float32)
        act = np.asarray(self._fn(obs), dtype=np.float32)
        if act.ndim != 2 or act.shape[0] != obs.shape[0]:
            raise PolicyError(f"policy {self.name} returned actions of shape {act.shape} for obs of shape {obs.shape}")
        return act

    def __repr__(self) -> str:
        return f"Policy({self.name!r}, format={self.format!r}, obs_dim={self.obs_dim}, act_dim={self.act_dim})"


def is_torch_module(obj: object) -> bool:
    return any(c.__module__.startswith("torch") and c.__name__ == "Module" for c in type(obj).__mro__)


def set_threads(threads: int) -> None:
    try:
        import torch
    except ImportError:  # a numpy-only callable policy does not need torch
        return

    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def torch_runner(fn: Callable[..., Any]) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a torch callable: numpy float32 in, numpy float32 out, under inference_mode."""
    import torch

    def run(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = fn(torch.from_numpy(obs))
        return action_tensor(out).detach().cpu().numpy().astype(np.float32, copy=False)

    return run


def action_tensor(out: Any) -> Any:
    if isinstance(out, Mapping):
        for key in DICT_ACTION_KEYS:
            if key in out:
                return out[key]
        if len(out) == 1:
            return next(iter(out.values()))
        raise PolicyError(f"policy returned a dict without any of {', '.join(DICT_ACTION_KEYS)}: {sorted(out)}")
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def first_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # torch colours some messages
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


def check_dims(policy: Policy, obs_dim: int | None, act_dim: int | None) -> Policy:
    """Fill in and check the policy's sizes against the env's with a dry run on zeros."""
    if policy.obs_dim is not None and obs_dim is not None and policy.obs_dim != obs_dim:
        raise PolicyError(
            f"policy {policy.name} expects observations of size {policy.obs_dim} but the env gives {obs_dim}"
        )
    n_obs = obs_dim if obs_dim is not None else policy.obs_dim
    if n_obs is None:
        return policy  # nothing to try it on; the first step will tell
    try:
        out = policy(np.zeros((2, n_obs), np.float32))
    except PolicyError:
        raise
    except Exception as e:
        hint = "; export it with a dynamic batch dimension (rollout.policy.export_policy)" if policy.format == "pt2" else ""
        raise PolicyError(
            f"policy {policy.name} fails on observations of size {n_obs} (batch 2): {first_line(e)}{hint}"
        ) from None
    policy.obs_dim = n_obs
    out_dim = int(out.shape[1])
    if policy.act_dim is not None and policy.act_dim != out_dim:
        raise PolicyError(f"policy {policy.name} claims {policy.act_dim} actions but returns {out_dim}")
    if act_dim is not None and out_dim != act_dim:
        raise PolicyError(f"policy {policy.name} outputs actions of size {out_dim} but the env takes {act_dim}")
    policy.act_dim = out_dim
    return policy
