"""Rollouts as NPZ files: bag -> .npz (`bag_to_npz`) and .npz -> bag (`npz_to_bag`).

The NPZ schema (DESIGN.md) has exactly six keys, all float32 except `info`:
obs [T, N, obs_dim], act [T, N, act_dim], rew [T, N], info [T] (one dict per step),
base_pos [T, N, 3], base_quat [T, N, 4] (x, y, z, w). Extra keys are opt-in (`EXTRAS`).
"""

from rollout.export.from_npz import load_npz, npz_to_bag
from rollout.export.to_npz import EXTRAS, Rollout, Written, bag_to_npz, read_rollout

__all__ = ["EXTRAS", "Rollout", "Written", "bag_to_npz", "load_npz", "npz_to_bag", "read_rollout"]
