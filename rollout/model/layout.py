"""Where env k is drawn when the envs share one origin (`RobotDescription.env_spacing` > 0).

One convention for every consumer (web viewer, Foxglove /tf and base poses), so env k appears
in the same place everywhere: a square grid, row-major, centred on the origin.
"""

from __future__ import annotations

import math

import numpy as np


def env_grid_offsets(num_envs: int, spacing: float) -> np.ndarray:
    """Offsets [num_envs, 3] float32 to add to env positions; all zero when `spacing` is 0.

    Env k sits in column k % cols and row k // cols, cols = ceil(sqrt(num_envs)),
    the grid centred on the origin in x and y.
    """
    if num_envs < 0:
        raise ValueError(f"num_envs must be >= 0, got {num_envs}")
    offsets = np.zeros((num_envs, 3), np.float32)
    if num_envs == 0 or spacing == 0:
        return offsets
    cols = math.ceil(math.sqrt(num_envs))
    rows = math.ceil(num_envs / cols)
    k = np.arange(num_envs)
    offsets[:, 0] = (k % cols - (cols - 1) / 2) * spacing
    offsets[:, 1] = (k // cols - (rows - 1) / 2) * spacing
    return offsets
