"""`make_policy`: a spec (built-in name, `module:callable` or checkpoint path) to a `Policy`."""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rollout.errors import PolicyError
from rollout.imports import load_callable
from rollout.policy.base import Policy, check_dims, first_line, is_torch_module, set_threads, torch_runner
from rollout.policy.formats import detect_format, sha256_file
from rollout.policy.mlp import MLPConfig, mlp_actor_class
from rollout.policy.safe_load import load_export_weights_only, load_weights_only

BUILTIN_CHECKPOINTS = {"demo": "humanoid_walk.pt2"}
"""Checkpoints shipped in rollout/data/, by name: `demo` walks the embedded Humanoid-v5
(trained by train/train_humanoid.py)."""

def make_policy(
    spec: str,
    *,
    obs_dim: int | None = None,
    act_dim: int | None = None,
    seed: int = 0,
    threads: int = 1,
    action_low: np.ndarray | None = None,
    action_high: np.ndarray | None = None,
    config: str | Path | None = None,
) -> Policy:
    """Load a policy from `spec`: "zero", "random", "demo", "pkg.module:callable" or a checkpoint path.

    `obs_dim`/`act_dim` are the env's sizes; a policy that does not fit them raises
    PolicyError naming both sizes, before any stepping. `action_low/high` [act_dim] bound the
    `random` policy. `config` is the JSON for a state_dict checkpoint (default: next to it).
    """
    if spec in ("zero", "random"):
        return _builtin(spec, obs_dim=obs_dim, act_dim=act_dim, seed=seed, low=action_low, high=action_high)
    if spec in BUILTIN_CHECKPOINTS:  # recorded under its built-in name, with the file's sha256
        shipped = Path(__file__).resolve().parent.parent / "data" / BUILTIN_CHECKPOINTS[spec]
        policy = make_policy(str(shipped), obs_dim=obs_dim, act_dim=act_dim, seed=seed, threads=threads)
        policy.name = spec
        return policy
    path = Path(spec)
    if not path.exists() and _looks_like_callable(spec):
        set_threads(threads)
        return check_dims(_from_callable(spec, obs_dim=obs_dim, act_dim=act_dim, seed=seed), obs_dim, act_dim)
    if path.is_dir():
        raise PolicyError(f"policy checkpoint {spec} is a directory; give the checkpoint file in it")
    if not path.is_file():
        raise PolicyError(f"policy checkpoint {spec} does not exist (or use demo, zero, random, or package.module:callable)")
    if importlib.util.find_spec("torch") is None:
        raise PolicyError(f"loading {spec} needs PyTorch: pip install torch")
    set_threads(threads)
    kind = detect_format(path)
    sha = sha256_file(path)
    if kind == "pt2":
        policy = _from_pt2(path, sha)
    elif kind == "torchscript":
        policy = _from_torchscript(path, sha)
    else:
        policy = _from_state_dict(path, sha, config)
    return check_dims(policy, obs_dim, act_dim)


def policy_for(info: Any, spec: str, *, seed: int = 0, threads: int = 1, config: str | Path | None = None) -> Policy:
    """`make_policy(spec)` sized and bounded for an env, given its `EnvInfo` (`env.info`)."""
    return make_policy(
        spec,
        obs_dim=info.obs_dim,
        act_dim=info.act_dim,
        seed=seed,
        threads=threads,
        config=config,
        action_low=info.action_low,
        action_high=info.action_high,
    )


def _builtin(
    name: str,
    *,
    obs_dim: int | None,
    act_dim: int | None,
    seed: int,
    low: np.ndarray | None,
    high: np.ndarray | None,
) -> Policy:
    if act_dim is None:
        raise PolicyError(f"the {name} policy needs the env's action size")
    if name == "zero":
        return Policy(
            lambda obs: np.zeros((obs.shape[0], act_dim), np.float32),
            name="zero",
            format="zero",
            obs_dim=obs_dim,
            act_dim=act_dim,
        )
    lo = np.full(act_dim, -1.0) if low is None else np.asarray(low, np.float64).reshape(act_dim)
    hi = np.full(act_dim, 1.0) if high is None else np.asarray(high, np.float64).reshape(act_dim)
    lo, hi = np.where(np.isfinite(lo), lo, -1.0), np.where(np.isfinite(hi), hi, 1.0)
    rng = np.random.default_rng(seed)
    return Policy(
        lambda obs: rng.uniform(lo, hi, (obs.shape[0], act_dim)).astype(np.float32),
        name="random",
        format="random",
        obs_dim=obs_dim,
        act_dim=act_dim,
    )


def _looks_like_callable(spec: str) -> bool:
    module, sep, attr = spec.partition(":")
    return bool(sep and module and attr) and "/" not in module and not module.endswith((".pt", ".pt2", ".pth"))


def _from_callable(spec: str, *, obs_dim: int | None, act_dim: int | None, seed: int) -> Policy:
    module_name, _, attr = spec.partition(":")
    factory = load_callable(module_name, attr, what="policy", error=PolicyError)
    offered = {"obs_dim": obs_dim, "act_dim": act_dim, "seed": seed}
    try:
        params = inspect.signature(factory).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        kwargs = {k: v for k, v in offered.items() if takes_any or k in params}
    except (TypeError, ValueError):
        kwargs = {}
    made = factory(**kwargs)
    if not callable(made):
        raise PolicyError(f"policy factory {spec} returned {type(made).__name__}, which is not callable")
    fn: Callable[[np.ndarray], np.ndarray] = made
    if is_torch_module(made):
        made.eval()
        fn = torch_runner(made)
    return Policy(fn, name=spec, format="callable")  # sizes: learnt from the dry run


def _from_pt2(path: Path, sha: str) -> Policy:
    try:
        program = load_export_weights_only(path)
    except PolicyError:
        raise
    except Exception as e:  # torch raises many kinds here; the user needs one line
        if "Weights only load failed" in str(e):
            raise PolicyError(f"policy checkpoint {path} holds pickled Python objects; refusing to unpickle them") from None
        raise PolicyError(f"cannot load torch.export program {path}: {first_line(e)}") from None
    obs_dim = None
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in program.graph_signature.user_inputs:
            shape = getattr(node.meta.get("val"), "shape", None)
            if shape is not None and len(shape) == 2 and isinstance(shape[1], int):
                obs_dim = int(shape[1])
            break
    return Policy(torch_runner(program.module()), name=str(path), format="pt2", sha256=sha, obs_dim=obs_dim)


def _from_torchscript(path: Path, sha: str) -> Policy:
    import torch

    try:
        with warnings.catch_warnings():  # torch.jit is deprecated; this is the legacy path
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise PolicyError(f"cannot load TorchScript file {path}: {first_line(e)}") from None
    module.eval()
    obs_dim = None
    params = [p for p in module.parameters() if p.ndim == 2]
    if params:  # a guess for MLPs, confirmed by the dry run
        obs_dim = int(params[0].shape[1])
    return Policy(torch_runner(module), name=str(path), format="torchscript", sha256=sha, obs_dim=obs_dim)


def _from_state_dict(path: Path, sha: str, config: str | Path | None) -> Policy:
    import torch

    state = load_weights_only(path)
    if isinstance(state, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise PolicyError(f"policy checkpoint {path} holds no state_dict of tensors")
    cfg_path = Path(config) if config is not None else _config_beside(path)
    cfg = MLPConfig.from_json(cfg_path)
    actor = mlp_actor_class()(cfg)
    actor.load_weights(state, where=str(path))
    actor.eval()
    return Policy(
        torch_runner(actor), name=str(path), format="state_dict", sha256=sha, obs_dim=cfg.obs_dim, act_dim=cfg.act_dim
    )


def _config_beside(path: Path) -> Path:
    for candidate in (path.with_suffix(".json"), path.with_name(path.name + ".json")):
        if candidate.is_file():
            return candidate
    raise PolicyError(
        f"policy checkpoint {path} is a state_dict and needs a JSON config beside it "
        f"({path.with_suffix('.json').name}: obs_dim, act_dim, hidden, activation)"
    )


ENV_POLICY = "checkpoint"
"""The policy spec that means "the policy the env came with" (`env.policy`)."""


def policy_for_env(env: Any, spec: str, *, seed: int = 0, threads: int = 1, config: str | Path | None = None) -> Policy:
    """`policy_for(env.info, spec)`, where `spec` "checkpoint" is the env's own policy: the agent
    of a ProtoMotions checkpoint env (`env.policy`); other envs have none and say so."""
    if spec == ENV_POLICY:
        own = getattr(env, "policy", None)
        if own is None:
            raise PolicyError(
                f"policy {ENV_POLICY!r} means the env's own policy, and {env.info.name} has none "
                "(only checkpoint envs such as env:=protomotions:<last.ckpt> have one)"
            )
        set_threads(threads)
        return own
    return policy_for(env.info, spec, seed=seed, threads=threads, config=config)
