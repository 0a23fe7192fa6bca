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
  and `demo`, the `.pt2` shipped in `rollout/data/` (see `BUILTIN_CHECKPOINTS`).

A whole pickled `nn.Module` (`torch.save(model)`) is refused without being unpickled:
unpickling runs code chosen by whoever wrote the file. A model may return a tensor, a
tuple/list (the first item is the action) or a dict (`mean_action`, `action` or `actions`).

Torch is imported only for the formats that need it, and runs with `threads` threads
(default 1: more threads stall a loop that alternates physics and small matrix products).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal
from unittest import mock

import numpy as np

from rollout.errors import PolicyError

if TYPE_CHECKING:
    import torch

PolicyFormat = Literal["zero", "random", "callable", "pt2", "state_dict", "torchscript"]
ACTIVATIONS = ("elu", "relu", "tanh", "silu", "gelu", "leaky_relu", "identity")
_DICT_ACTION_KEYS = ("mean_action", "action", "actions")
BUILTIN_CHECKPOINTS = {"demo": "humanoid_walk.pt2"}
"""Checkpoints shipped in rollout/data/, by name: `demo` walks the embedded Humanoid-v5
(trained by train/train_humanoid.py)."""


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


@dataclass(frozen=True)
class MLPConfig:
    """The JSON file that goes with a `state_dict` checkpoint, describing an MLP actor.

    Example `policy.json`::

        {"obs_dim": 348, "act_dim": 17, "hidden": [256, 256], "activation": "elu",
         "obs_mean": null, "obs_std": null, "obs_clip": null, "prefix": ""}

    The network is Linear -> activation -> ... -> Linear (no activation after the last
    layer unless `final_activation` is set). Its weights are the 2-D `*weight` tensors of the
    state_dict whose names start with `prefix`, in the state_dict's order, each with its
    `*bias`; any names work, so an actor inside an actor-critic loads with `"prefix": "actor."`.
    A checkpoint that is a dict holding the state_dict under `state_dict` or `model` also works.

    Observation normalisation, applied as clip((obs - mean) / std, -obs_clip, obs_clip):
    `obs_mean`/`obs_std` lists in the JSON, or tensors in the state_dict named `obs_mean` and
    `obs_std` (or `obs_var`), with or without the prefix. None of them: no normalisation.
    """

    obs_dim: int
    act_dim: int
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "elu"
    final_activation: str = "identity"
    obs_mean: tuple[float, ...] | None = None
    obs_std: tuple[float, ...] | None = None
    obs_clip: float | None = None
    std_eps: float = 1e-8
    prefix: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, path: str | Path) -> MLPConfig:
        """Read and check a config file; a bad file raises PolicyError in one line."""
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise PolicyError(f"policy config {path} does not exist") from None
        except (OSError, ValueError) as e:
            raise PolicyError(f"policy config {path} is not valid JSON: {e}") from None
        if not isinstance(raw, dict) or "obs_dim" not in raw or "act_dim" not in raw:
            raise PolicyError(f"policy config {path} must be a JSON object with at least obs_dim and act_dim")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs = {k: v for k, v in raw.items() if k in known}
        for key in ("hidden", "obs_mean", "obs_std"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        for key in ("activation", "final_activation"):
            if kwargs.get(key, "identity") not in ACTIVATIONS:
                raise PolicyError(f"policy config {path}: {key} {kwargs[key]!r} is not one of {', '.join(ACTIVATIONS)}")
        try:
            return cls(**kwargs, extra={k: v for k, v in raw.items() if k not in known})
        except TypeError as e:
            raise PolicyError(f"policy config {path}: {e}") from None

    def to_json(self, path: str | Path) -> None:
        """Write the config as JSON."""
        d = asdict(self)
        d.update(d.pop("extra"))
        Path(path).write_text(json.dumps(d, indent=1) + "\n")


# -- public entry points --------------------------------------------------------------


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
    """Load a policy from `spec`: "zero", "random", "pkg.module:callable" or a checkpoint path.

    `obs_dim`/`act_dim` are the env's sizes; a policy that does not fit them raises
    PolicyError naming both sizes, before any stepping. `action_low/high` [act_dim] bound the
    `random` policy. `config` is the JSON for a state_dict checkpoint (default: next to it).
    """
    if spec in ("zero", "random"):
        return _builtin(spec, obs_dim=obs_dim, act_dim=act_dim, seed=seed, low=action_low, high=action_high)
    if spec in BUILTIN_CHECKPOINTS:
        spec = str(Path(__file__).parent / "data" / BUILTIN_CHECKPOINTS[spec])
    path = Path(spec)
    if not path.exists() and _looks_like_callable(spec):
        _set_threads(threads)
        return _check_dims(_from_callable(spec, obs_dim=obs_dim, act_dim=act_dim, seed=seed), obs_dim, act_dim)
    if path.is_dir():
        raise PolicyError(f"policy checkpoint {spec} is a directory; give the checkpoint file in it")
    if not path.is_file():
        raise PolicyError(f"policy checkpoint {spec} does not exist (or use demo, zero, random, or package.module:callable)")
    if importlib.util.find_spec("torch") is None:
        raise PolicyError(f"loading {spec} needs PyTorch: pip install torch")
    _set_threads(threads)
    kind = detect_format(path)
    sha = sha256_file(path)
    if kind == "pt2":
        policy = _from_pt2(path, sha)
    elif kind == "torchscript":
        policy = _from_torchscript(path, sha)
    else:
        policy = _from_state_dict(path, sha, config)
    return _check_dims(policy, obs_dim, act_dim)


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


def detect_format(path: str | Path) -> Literal["pt2", "torchscript", "pickle"]:
    """Tell a checkpoint's format from its bytes: a torch.export program, TorchScript, or a
    torch.save pickle (state_dict or, refused later, a whole module)."""
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile:
            raise PolicyError(f"policy checkpoint {path} is a damaged zip archive") from None
        if any(n.endswith("/models/model.json") or n.endswith("/archive_format") for n in names):
            return "pt2"
        if any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("/data.pkl") for n in names):
            return "pickle"
        raise PolicyError(f"policy checkpoint {path} is a zip archive but not a torch.export, TorchScript or torch.save file")
    if head[:1] == b"\x80":  # pickle protocol marker: a legacy (non-zip) torch.save file
        return "pickle"
    raise PolicyError(f"policy checkpoint {path} is not a torch checkpoint (.pt2, state_dict or TorchScript)")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_mlp(config: MLPConfig) -> torch.nn.Module:
    """The MLP actor `config` describes, normalisation included, with fresh weights."""
    return _mlp_actor_class()(config)


def export_policy(module: torch.nn.Module, path: str | Path, *, obs_dim: int) -> Path:
    """Write `module` (obs [B, obs_dim] -> actions [B, act_dim]) as a `.pt2` torch.export program
    with a dynamic batch dimension. Returns the path written."""
    import torch

    module = module.eval()
    example = (torch.zeros(2, obs_dim),)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    with torch.no_grad():
        program = torch.export.export(module, example, dynamic_shapes=({0: batch},))
    path = Path(path)
    torch.export.save(program, str(path))
    return path


def save_mlp_checkpoint(module: torch.nn.Module, path: str | Path, config: MLPConfig) -> tuple[Path, Path]:
    """Save `module.state_dict()` to `path` and `config` to the JSON beside it (same stem)."""
    import torch

    path = Path(path)
    torch.save(module.state_dict(), path)
    json_path = path.with_suffix(".json")
    config.to_json(json_path)
    return path, json_path


# -- built-ins and callables -------------------------------------------------------------


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
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PolicyError(f"cannot import policy module {module_name} ({e})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise PolicyError(f"policy module {module_name} has no callable {attr}")
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
    if _is_torch_module(made):
        made.eval()
        fn = _torch_runner(made)
    return Policy(fn, name=spec, format="callable")  # sizes: learnt from the dry run


def _is_torch_module(obj: object) -> bool:
    return any(c.__module__.startswith("torch") and c.__name__ == "Module" for c in type(obj).__mro__)


# -- torch formats -----------------------------------------------------------------------


def _set_threads(threads: int) -> None:
    try:
        import torch
    except ImportError:  # a numpy-only callable policy does not need torch
        return

    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _torch_runner(fn: Callable[..., Any]) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a torch callable: numpy float32 in, numpy float32 out, under inference_mode."""
    import torch

    def run(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = fn(torch.from_numpy(obs))
        return _action_tensor(out).detach().cpu().numpy().astype(np.float32, copy=False)

    return run


def _action_tensor(out: Any) -> Any:
    if isinstance(out, Mapping):
        for key in _DICT_ACTION_KEYS:
            if key in out:
                return out[key]
        if len(out) == 1:
            return next(iter(out.values()))
        raise PolicyError(f"policy returned a dict without any of {', '.join(_DICT_ACTION_KEYS)}: {sorted(out)}")
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def _from_pt2(path: Path, sha: str) -> Policy:
    import torch

    try:
        program = _load_export_weights_only(path)
    except PolicyError:
        raise
    except Exception as e:  # torch raises many kinds here; the user needs one line
        if "Weights only load failed" in str(e):
            raise PolicyError(f"policy checkpoint {path} holds pickled Python objects; refusing to unpickle them") from None
        raise PolicyError(f"cannot load torch.export program {path}: {_first_line(e)}") from None
    obs_dim = None
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in program.graph_signature.user_inputs:
            shape = getattr(node.meta.get("val"), "shape", None)
            if shape is not None and len(shape) == 2 and isinstance(shape[1], int):
                obs_dim = int(shape[1])
            break
    return Policy(_torch_runner(program.module()), name=str(path), format="pt2", sha256=sha, obs_dim=obs_dim)


def _load_export_weights_only(path: Path) -> Any:
    """`torch.export.load`, with every unpickling it would do restricted to tensors.

    A .pt2 keeps its graph as JSON and its weights as raw bytes, but `torch.export.load` still
    unpickles some payloads with `weights_only=False` (pickled weights and constants, custom
    objects, and sample inputs when a weights-only load fails). Those would run code from an
    untrusted file, so while it loads, `torch.load` is forced to `weights_only=True` and plain
    unpickling is refused.
    """
    import torch

    try:
        import torch.export.pt2_archive._package as package
    except ImportError:
        package = None
    if package is None or not hasattr(package, "pickle") or not hasattr(torch._C, "_pickle_load_obj"):
        # fail closed: without both hooks an untrusted .pt2 could unpickle code
        raise PolicyError(
            f"cannot load {path} safely with torch {torch.__version__} (tested with 2.13); "
            "use that torch version or a state_dict checkpoint with its JSON config"
        )
    real_load = torch.load

    def weights_only_load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return real_load(*args, **kwargs)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PolicyError(f"policy checkpoint {path} holds pickled Python objects; refusing to unpickle them")

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(torch, "load", weights_only_load))
        stack.enter_context(mock.patch.object(package, "pickle", SimpleNamespace(loads=refuse, load=refuse)))
        stack.enter_context(mock.patch.object(torch._C, "_pickle_load_obj", refuse))
        return torch.export.load(str(path))


def _from_torchscript(path: Path, sha: str) -> Policy:
    import torch

    try:
        with warnings.catch_warnings():  # torch.jit is deprecated; this is the legacy path
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise PolicyError(f"cannot load TorchScript file {path}: {_first_line(e)}") from None
    module.eval()
    obs_dim = None
    params = [p for p in module.parameters() if p.ndim == 2]
    if params:  # a guess for MLPs, confirmed by the dry run
        obs_dim = int(params[0].shape[1])
    return Policy(_torch_runner(module), name=str(path), format="torchscript", sha256=sha, obs_dim=obs_dim)


def _from_state_dict(path: Path, sha: str, config: str | Path | None) -> Policy:
    import torch

    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if _is_zip(path) else []
    if unsafe:
        raise PolicyError(
            f"policy checkpoint {path} is a pickled Python object ({unsafe[0]}), not weights; refusing to "
            "unpickle it (that could run any code). Save it with rollout.policy.export_policy (.pt2) or as a "
            "state_dict with a JSON config"
        )
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise PolicyError(f"cannot load policy checkpoint {path} safely: {_first_line(e)}") from None
    if isinstance(state, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise PolicyError(f"policy checkpoint {path} holds no state_dict of tensors")
    cfg_path = Path(config) if config is not None else _config_beside(path)
    cfg = MLPConfig.from_json(cfg_path)
    actor = _mlp_actor_class()(cfg)
    actor.load_weights(state, where=str(path))
    actor.eval()
    return Policy(
        _torch_runner(actor), name=str(path), format="state_dict", sha256=sha, obs_dim=cfg.obs_dim, act_dim=cfg.act_dim
    )


def _config_beside(path: Path) -> Path:
    for candidate in (path.with_suffix(".json"), path.with_name(path.name + ".json")):
        if candidate.is_file():
            return candidate
    raise PolicyError(
        f"policy checkpoint {path} is a state_dict and needs a JSON config beside it "
        f"({path.with_suffix('.json').name}: obs_dim, act_dim, hidden, activation)"
    )


def _is_zip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _first_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # torch colours some messages
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


@functools.cache
def _mlp_actor_class() -> type:
    """The MLPActor nn.Module class, built on first use so that importing this module does
    not import torch."""
    import torch

    nn = torch.nn

    def act(name: str) -> Any:
        return {
            "elu": nn.ELU,
            "relu": nn.ReLU,
            "tanh": nn.Tanh,
            "silu": nn.SiLU,
            "gelu": nn.GELU,
            "leaky_relu": nn.LeakyReLU,
            "identity": nn.Identity,
        }[name]()

    class MLPActor(nn.Module):
        """clip((obs - mean) / std) -> Linear/activation stack -> actions."""

        def __init__(self, cfg: MLPConfig) -> None:
            super().__init__()
            self.cfg = cfg
            sizes = [cfg.obs_dim, *cfg.hidden, cfg.act_dim]
            layers: list[Any] = []
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                layers.append(nn.Linear(a, b))
                layers.append(act(cfg.activation if i < len(sizes) - 2 else cfg.final_activation))
            self.net = nn.Sequential(*layers)
            mean = torch.zeros(cfg.obs_dim) if cfg.obs_mean is None else torch.tensor(cfg.obs_mean)
            std = torch.ones(cfg.obs_dim) if cfg.obs_std is None else torch.tensor(cfg.obs_std)
            self.register_buffer("obs_mean", mean.float().reshape(cfg.obs_dim))
            self.register_buffer("obs_std", std.float().reshape(cfg.obs_dim))
            self.std_eps = float(cfg.std_eps)
            self.obs_clip = float("inf") if cfg.obs_clip is None else float(cfg.obs_clip)

        # left unannotated: TorchScript then reads obs as a Tensor
        def forward(self, obs):  # noqa: ANN001, ANN202
            x = (obs - self.obs_mean) / (self.obs_std + self.std_eps)
            return self.net(x.clamp(-self.obs_clip, self.obs_clip))

        def load_weights(self, state: Mapping[str, Any], *, where: str) -> None:
            """Copy Linear weights (in state_dict order) and normaliser tensors from `state`."""
            cfg = self.cfg
            keys = [k for k in state if k.startswith(cfg.prefix)]
            weights = [k for k in keys if k.endswith("weight") and getattr(state[k], "ndim", 0) == 2]
            linears = [m for m in self.net if isinstance(m, nn.Linear)]
            got = [tuple(state[k].shape) for k in weights]
            want = [tuple(m.weight.shape) for m in linears]
            if got != want:
                raise PolicyError(
                    f"policy checkpoint {where} has layers {got} (out, in) but its config describes {want}"
                )
            with torch.no_grad():
                for k, m in zip(weights, linears):
                    m.weight.copy_(state[k])
                    bias = state.get(k[: -len("weight")] + "bias")
                    if bias is None:
                        raise PolicyError(f"policy checkpoint {where} has {k} but no matching bias")
                    m.bias.copy_(bias)
                mean = _find(state, cfg.prefix, ("obs_mean",))
                std = _find(state, cfg.prefix, ("obs_std",))
                var = _find(state, cfg.prefix, ("obs_var",))
                if mean is not None:
                    self.obs_mean.copy_(mean.reshape(cfg.obs_dim))
                if std is not None:
                    self.obs_std.copy_(std.reshape(cfg.obs_dim))
                elif var is not None:
                    self.obs_std.copy_(var.reshape(cfg.obs_dim).sqrt())

    return MLPActor


def _find(state: Mapping[str, Any], prefix: str, names: Sequence[str]) -> Any:
    for name in names:
        for key in (prefix + name, name):
            if key in state:
                return state[key]
    return None


# -- size checks -------------------------------------------------------------------------


def _check_dims(policy: Policy, obs_dim: int | None, act_dim: int | None) -> Policy:
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
            f"policy {policy.name} fails on observations of size {n_obs} (batch 2): {_first_line(e)}{hint}"
        ) from None
    policy.obs_dim = n_obs
    out_dim = int(out.shape[1])
    if policy.act_dim is not None and policy.act_dim != out_dim:
        raise PolicyError(f"policy {policy.name} claims {policy.act_dim} actions but returns {out_dim}")
    if act_dim is not None and out_dim != act_dim:
        raise PolicyError(f"policy {policy.name} outputs actions of size {out_dim} but the env takes {act_dim}")
    policy.act_dim = out_dim
    return policy
