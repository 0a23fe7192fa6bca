"""A set of shards as one rollout: each shard read as its own rollout, envs concatenated.

Rank r's envs follow rank r-1's in the N axis (shard order: see `rollout.bag.shards`), so a
run that trained on 4 GPUs x 1,024 envs reads as one [T, 4096, ...] rollout. Only the control
steps every shard has become the T rows; a note says how many were left out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from rollout.bag import Bag
from rollout.bag.shards import ShardView, namespaces, shards_of
from rollout.errors import BagError
from rollout.export.npzfile import NpzWriter
from rollout.export.to_npz import Progress, Rollout, Written, _check_extras, default_output, read_rollout

_PER_ENV = {"obs", "act", "rew", "base_pos", "base_quat", "joint_pos", "body_poses", "done", "terminated", "truncated"}
_SAME = {"step", "sim_time", "robot_model", "robot_model_format", "env", "body_names", "joint_names", "action_names", "dt"}


def _per_env(key: str) -> bool:
    return key in _PER_ENV or key.startswith("term_")


def _merge_info(infos: list[np.ndarray]) -> np.ndarray:
    out = np.empty(infos[0].size, dtype=object)
    for t in range(out.size):
        steps = [info[t] for info in infos]
        merged = dict(steps[0])
        merged["reward_terms"] = {
            name: np.concatenate([s["reward_terms"][name] for s in steps]) for name in steps[0]["reward_terms"]
        }
        for key in ("done", "terminated", "truncated"):
            merged[key] = np.concatenate([s[key] for s in steps])
        out[t] = merged
    return out


def _combine(views: list[ShardView], parts: list[Rollout]) -> Rollout:
    """Concatenate the shards' envs over the control steps they all have."""
    common = parts[0].steps
    for r in parts[1:]:
        common = np.intersect1d(common, r.steps)
    if common.size == 0:
        raise BagError("the shards have no control step in common: " + ", ".join(v.label for v in views))
    notes = [note for v, r in zip(views, parts) for note in (f"{v.label}: {n}" for n in r.notes)]
    rows = []
    for v, r in zip(views, parts):
        keep = np.isin(r.steps, common)
        if not keep.all():
            notes.append(f"{v.label}: {int((~keep).sum())} steps no other shard has were left out")
        rows.append(np.flatnonzero(keep))
    names = [list(r.arrays) for r in parts]
    if any(n != names[0] for n in names):
        raise BagError("the shards do not have the same keys: " + ", ".join(v.label for v in views))
    for key in ("env", "body_names", "obs"):  # the same robot and sizes, else the envs do not stack
        if key not in parts[0].arrays:
            continue
        first = parts[0].arrays[key]
        for v, r in zip(views[1:], parts[1:]):
            other = r.arrays[key]
            same = first.shape[2:] == other.shape[2:] if key == "obs" else np.array_equal(first, other)
            if not same:
                raise BagError(f"{views[0].label} and {v.label} differ in {key}; they are not shards of one rollout")
    arrays: dict[str, np.ndarray] = {}
    for key in names[0]:
        if key == "info":
            arrays[key] = _merge_info([r.arrays[key][ix] for r, ix in zip(parts, rows)])
        elif key == "env_ids":
            offsets = np.cumsum([0] + [int(r.arrays["obs"].shape[1]) for r in parts[:-1]])
            arrays[key] = np.concatenate([r.arrays[key] + o for r, o in zip(parts, offsets)])
        elif key in _SAME:
            arrays[key] = parts[0].arrays[key][rows[0]] if key in ("step", "sim_time") else parts[0].arrays[key]
        elif _per_env(key):
            arrays[key] = np.concatenate([r.arrays[key][ix] for r, ix in zip(parts, rows)], axis=1)
        else:
            arrays[key] = parts[0].arrays[key]
    sizes = [int(r.arrays["obs"].shape[1]) for r in parts]
    start = np.cumsum([0] + sizes)
    notes += [f"envs {a}-{a + n - 1}: {v.label}" for v, a, n in zip(views, start, sizes)]
    return Rollout(arrays, common, np.arange(int(start[-1])), notes)


def _select_envs(rollout: Rollout, envs: Sequence[int]) -> Rollout:
    ids = np.asarray(envs, dtype=np.int64).reshape(-1)
    n = rollout.env_ids.size
    if ids.size == 0 or ids.min() < 0 or ids.max() >= n:
        raise BagError(f"envs must be between 0 and {n - 1} (the shards have {n} envs), got {ids.tolist()}")
    arrays = {}
    for key, value in rollout.arrays.items():
        if key == "info":
            arrays[key] = np.empty(value.size, dtype=object)
            for t, step in enumerate(value):
                arrays[key][t] = dict(step, reward_terms={k: v[ids] for k, v in step["reward_terms"].items()},
                                      **{f: step[f][ids] for f in ("done", "terminated", "truncated")})  # fmt: skip
        elif key == "env_ids":
            arrays[key] = value[ids]
        else:
            arrays[key] = value[:, ids] if _per_env(key) else value
    return Rollout(arrays, rollout.steps, ids, rollout.notes)


def read_rollout_set(
    paths: Sequence[str | os.PathLike[str]],
    *,
    envs: Sequence[int] | None = None,
    steps: tuple[int | None, int | None] | None = None,
    sim_time: tuple[float | None, float | None] | None = None,
    extras: Sequence[str] = (),
    progress: Progress | None = None,
) -> Rollout:
    """Read every shard in the bags at `paths` as one rollout, envs concatenated in shard order.

    The options are `read_rollout`'s; `envs` indexes the concatenated envs.
    """
    _check_extras(extras)
    if not paths:
        raise BagError("no bags given")
    with ExitStack() as stack:
        bags = [stack.enter_context(Bag(p)) for p in paths]
        views = shards_of(bags)
        parts = [read_rollout(v, steps=steps, sim_time=sim_time, extras=extras, progress=progress) for v in views]  # type: ignore[arg-type]
        combined = _combine(views, parts) if len(parts) > 1 else parts[0]
    return combined if envs is None else _select_envs(combined, envs)


def is_sharded(paths: Sequence[str | os.PathLike[str]]) -> bool:
    """Whether these bags are a set of shards (several bags, or one holding namespaced sims)."""
    if len(paths) != 1:
        return True
    with Bag(paths[0]) as bag:
        return namespaces(bag) not in ([], [""])  # a plain bag, or none at all: `bag_to_npz` says what is wrong


def rollout_set_to_npz(
    paths: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str] | None = None,
    *,
    compressed: bool = False,
    overwrite: bool = False,
    **options: object,
) -> Written:
    """Write the shards at `paths` as one .npz (default next to the first bag); options as `read_rollout_set`."""
    out = Path(output) if output is not None else default_output(paths[0])
    if out.suffix != ".npz":
        raise BagError(f"output {out} must end in .npz")
    if out.exists() and not overwrite:
        raise BagError(f"{out} already exists; pass --force to overwrite it")
    rollout = read_rollout_set(paths, **options)  # type: ignore[arg-type]
    try:
        with NpzWriter(out, compressed=compressed) as npz:
            for key, value in rollout.arrays.items():
                npz.add(key, value)
    except OSError as e:
        raise BagError(f"cannot write {out}: {e.strerror or e}") from None
    T, n = rollout.arrays["rew"].shape
    return Written(out, (T, n), list(npz.keys), rollout.notes)
