"""The MLP actor that a `state_dict` checkpoint's JSON config (`MLPConfig`) describes."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollout.errors import PolicyError

if TYPE_CHECKING:
    import torch

ACTIVATIONS = ("elu", "relu", "tanh", "silu", "gelu", "leaky_relu", "identity")

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


def build_mlp(config: MLPConfig) -> torch.nn.Module:
    """The MLP actor `config` describes, normalisation included, with fresh weights."""
    return mlp_actor_class()(config)


@functools.cache
def mlp_actor_class() -> type:
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
                mean = find_tensor(state, cfg.prefix, ("obs_mean",))
                std = find_tensor(state, cfg.prefix, ("obs_std",))
                var = find_tensor(state, cfg.prefix, ("obs_var",))
                if mean is not None:
                    self.obs_mean.copy_(mean.reshape(cfg.obs_dim))
                if std is not None:
                    self.obs_std.copy_(std.reshape(cfg.obs_dim))
                elif var is not None:
                    self.obs_std.copy_(var.reshape(cfg.obs_dim).sqrt())

    return MLPActor


def find_tensor(state: Mapping[str, Any], prefix: str, names: Sequence[str]) -> Any:
    for name in names:
        for key in (prefix + name, name):
            if key in state:
                return state[key]
    return None
