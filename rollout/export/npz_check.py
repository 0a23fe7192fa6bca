"""Reading an NPZ that may be hostile: every member's `.npy` header is checked against the bytes
the zip holds for it before anything is allocated, only `info` may be unpickled (and only when
asked), and the arrays are checked against the documented schema up front, so a bad file ends
in one line that names the key, never in a traceback or in a bag that breaks the viewer later.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rollout.errors import BagError
from rollout.limits import check_allocation

from rollout.msg_checks import MAX_NAMES, MAX_TERMS  # noqa: E402


def member_header(z: zipfile.ZipFile, info: zipfile.ZipInfo, where: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype an `.npy` member declares, checked against its size in the zip."""
    key = info.filename[: -len(".npy")]
    try:
        with z.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            header_size = f.tell()
    # zipfile raises NotImplementedError for an unknown compression method, RuntimeError for encryption
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, SyntaxError, TypeError, KeyError, NotImplementedError,
            RuntimeError) as e:
        why = f"{type(e).__name__}: {e}".splitlines()[0]
        raise BagError(f"{where}: key {key!r} is corrupt or not an .npy array ({why})") from None
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise BagError(f"{where}: key {key!r} declares the shape {shape}")
    if dtype.hasobject:
        return tuple(shape), dtype  # pickled: its size is not in its header
    count = int(np.prod(shape, dtype=object))
    need = count * dtype.itemsize
    have = info.file_size - header_size
    if need != have:
        raise BagError(f"{where}: key {key!r} declares {shape} {dtype} ({need} bytes) but holds {have} bytes")
    check_allocation(need, f"{where}: key {key!r}", BagError)
    return tuple(shape), dtype


def read_members(path: Path, *, allow_pickle: bool, info: bool) -> dict[str, Any]:
    """Every member of the NPZ at `path`, each read only after its header checks out; `info` is
    unpickled only with `allow_pickle` (no other member ever is)."""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise BagError(f"{path} is not an .npz file ({e})") from None
    out: dict[str, Any] = {}
    with z:
        members = [m for m in z.infolist() if m.filename.endswith(".npy")]
        for m in members:
            key = m.filename[: -len(".npy")]
            if key == "info" and not info:
                continue
            shape, dtype = member_header(z, m, path)
            if dtype.hasobject and key != "info":
                raise BagError(f"{path}: key {key!r} is a pickled object array; only `info` may be one")
            if dtype.hasobject and not allow_pickle:
                from rollout.export.from_npz import PICKLE_HINT

                raise BagError(f"{path}: {PICKLE_HINT}")
            try:
                with z.open(m) as f:
                    out[key] = np.lib.format.read_array(f, allow_pickle=key == "info" and allow_pickle)
            except Exception as e:  # unpickling runs arbitrary code: anything can come out of it
                raise BagError(f"{path}: key {key!r} cannot be read ({type(e).__name__}: {e})".split("\n")[0]) from None
    return out


def _numeric(z: dict[str, Any], key: str, where: Path) -> np.ndarray:
    a = z[key]
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiub":
        kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise BagError(f"{where}: {key} must be an array of numbers, not {kind}")
    return a


def _shape(z: dict[str, Any], key: str, shape: tuple[int | None, ...], where: Path) -> np.ndarray:
    a = _numeric(z, key, where)
    if a.ndim != len(shape) or any(want is not None and have != want for have, want in zip(a.shape, shape)):
        text = ", ".join("*" if s is None else str(s) for s in shape)
        raise BagError(f"{where}: {key} has shape {a.shape}, expected [{text}]")
    return a


def _names(z: dict[str, Any], key: str, count: int | None, where: Path) -> None:
    if key not in z:
        return
    a = z[key]
    if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype.kind not in "US" or a.size > MAX_NAMES:
        raise BagError(f"{where}: {key} must be a 1-d array of strings")
    if count is not None and a.size != count:
        raise BagError(f"{where}: {key} has {a.size} names for {count} columns")


def _text(z: dict[str, Any], key: str, where: Path) -> None:
    if key in z and not (isinstance(z[key], np.ndarray) and z[key].ndim == 0 and z[key].dtype.kind in "US"):
        raise BagError(f"{where}: {key} must be a string")


def validate_rollout(z: dict[str, Any], where: Path) -> None:
    """Raise a one-line `BagError` unless `z` (members of an NPZ) follows the documented schema."""
    obs = _numeric(z, "obs", where)
    if obs.ndim != 3 or 0 in obs.shape:
        raise BagError(f"{where}: obs must be [T, N, obs_dim] with T, N and obs_dim at least 1, got {obs.shape}")
    T, N, _ = obs.shape
    act = _shape(z, "act", (T, N, None), where)
    if act.shape[2] == 0:
        raise BagError(f"{where}: act must have at least one action dimension, got {act.shape}")
    _shape(z, "rew", (T, N), where)
    _shape(z, "base_pos", (T, N, 3), where)
    _shape(z, "base_quat", (T, N, 4), where)
    if "dt" in z:
        dt = _numeric(z, "dt", where)
        if dt.size != 1 or not 0 < float(dt.reshape(-1)[0]) < 3600:
            raise BagError(f"{where}: dt must be one positive number of seconds, got {dt.reshape(-1)[:3]}")
    if "step" in z:
        step = _shape(z, "step", (T,), where)
        if step.dtype.kind not in "iu":
            raise BagError(f"{where}: step must be integers, not {step.dtype}")
    if "sim_time" in z and not np.all(np.isfinite(_shape(z, "sim_time", (T,), where))):
        raise BagError(f"{where}: sim_time must be finite numbers")
    for key in ("done", "terminated", "truncated"):
        if key in z:
            _shape(z, key, (T, N), where)
    if "joint_pos" in z:
        _shape(z, "joint_pos", (T, N, None), where)
        _names(z, "joint_names", z["joint_pos"].shape[2], where)
    if "body_poses" in z:
        poses = _shape(z, "body_poses", (T, N, None, 7), where)
        if poses.shape[2] == 0:
            raise BagError(f"{where}: body_poses must hold at least one body, got {poses.shape}")
        _names(z, "body_names", None, where)
    _names(z, "action_names", act.shape[2], where)
    for key in ("robot_model", "robot_model_format", "env"):
        _text(z, key, where)
    terms = [k for k in z if k.startswith("term_")]
    if len(terms) > MAX_TERMS:
        raise BagError(f"{where}: {len(terms)} reward terms (term_* keys); at most {MAX_TERMS} are supported")
    for k in terms:
        _shape(z, k, (T, N), where)
    if "info" in z:
        validate_info(z["info"], T, N, where)


def validate_info(info: Any, T: int, N: int, where: Path) -> None:
    """`info` is [T] dicts; reward_terms the same names every step, each [N] numbers; the
    step, sim time and flags, where given, of the documented types."""
    if not isinstance(info, np.ndarray) or info.shape != (T,):
        raise BagError(f"{where}: info must be [T] = ({T},) per-step dicts, got {getattr(info, 'shape', type(info).__name__)}")
    names: list[str] | None = None
    for t, d in enumerate(info.tolist()):
        if not isinstance(d, dict):
            raise BagError(f"{where}: info[{t}] must be a dict, not {type(d).__name__}")
        rt = d.get("reward_terms")
        if rt is not None:
            if not isinstance(rt, dict) or len(rt) > MAX_TERMS or not all(isinstance(k, str) for k in rt):
                raise BagError(f"{where}: info[{t}]['reward_terms'] must be a dict of at most {MAX_TERMS} named terms")
            if names is None:
                names = list(rt)
            elif list(rt) != names:
                raise BagError(f"{where}: info[{t}]['reward_terms'] names differ from step 0's")
            for name, v in rt.items():
                if _size(v, "fiub") != N:
                    raise BagError(f"{where}: info[{t}]['reward_terms'][{name!r}] must be {N} numbers")
        for key in ("done", "terminated", "truncated"):
            if d.get(key) is not None and _size(d[key], "biuf") != N:
                raise BagError(f"{where}: info[{t}][{key!r}] must be {N} flags")
        for key, kinds in (("step", "iu"), ("sim_time", "fiu")):
            if d.get(key) is not None and _size(d[key], kinds) != 1:
                raise BagError(f"{where}: info[{t}][{key!r}] must be one number")
        if "sim_time" in d and d["sim_time"] is not None and not np.isfinite(float(np.asarray(d["sim_time"]).reshape(-1)[0])):
            raise BagError(f"{where}: info[{t}]['sim_time'] must be finite")
    if names is not None:
        check_allocation(T * len(names) * N * 4, f"{where}: {len(names)} reward terms over {T} steps", BagError)


def _size(v: Any, kinds: str) -> int:
    """How many numbers `v` holds when it is numbers of the `kinds` (numpy kind letters), else -1."""
    if hasattr(v, "detach"):  # a torch tensor pickled by another tool
        v = v.detach().cpu().numpy()
    if isinstance(v, bool) or isinstance(v, (int, float, np.generic)):
        a = np.asarray(v)
    elif isinstance(v, (np.ndarray, list, tuple)):
        try:
            a = np.asarray(v)
        except (ValueError, TypeError):
            return -1
    else:
        return -1
    return int(a.size) if a.dtype.kind in kinds else -1
