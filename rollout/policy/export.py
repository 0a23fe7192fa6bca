"""Writing policies in formats `make_policy` loads: `.pt2` programs, and a state_dict with its JSON."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rollout.policy.mlp import MLPConfig

if TYPE_CHECKING:
    import torch

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
