"""NPZ -> bag: turn an .npz in the documented schema into a bag the replay node and viewer play.

The bag holds what a recording of the same values would (the messages are built by
`RolloutMessages`, as the sim node builds them): State, Action, RewardTerms and base poses every
step, episode events where `info` has done flags (returns and lengths summed from `rew`), and
the RobotDescription with what can be inferred (env count, dims, reward term names, dt).

NPZ files made by other tools (ProtoMotions' exporter this project grew out of) often have only
the six documented keys and so no robot model and no body poses. Then the base is drawn as the
robot: the one body "base" (its poses are base_pos/base_quat) of a small box model (`BASE_MODEL`),
so the viewer, the video encoder and Foxglove (/tf, /robot_description of env 0) all show each
env's base moving. An NPZ written by `to_npz --extra robot,body_poses,joint_pos` carries the real
model and body poses, and the bag draws the real robot.

`info` is a pickled object array: unpickling runs code chosen by whoever made the file, so it
is loaded only when the caller passes `allow_pickle=True` (`--allow-pickle`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rollout.bag import BagWriter
from rollout.bag.compression import Compression
from rollout.errors import BagError
from rollout.export.npz_check import read_members, validate_rollout
from rollout.export.records import RolloutArrays, write_records
from rollout.messages import RolloutMessages
from rollout.sim import EnvInfo

DEFAULT_DT = 1.0 / 30.0  # used only when neither --dt, the NPZ's dt nor info's sim times give one
REQUIRED = ("obs", "act", "rew", "base_pos", "base_quat")

BASE_BODY = "base"
BASE_MODEL = """<mujoco model="base">
  <worldbody>
    <body name="base">
      <freejoint name="base"/>
      <geom name="base" type="box" size="0.15 0.1 0.05" rgba="0.35 0.55 0.85 1"/>
      <geom name="front" type="sphere" size="0.04" pos="0.15 0 0.05" rgba="0.95 0.6 0.2 1"/>
    </body>
  </worldbody>
</mujoco>
"""
"""The robot drawn for an NPZ without a model: a 0.3 m box on the floating base, a dot marking its +x."""

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first local file header, or an empty zip

PICKLE_HINT = (
    "its `info` is a pickled object array, and unpickling can run code chosen by whoever made the "
    "file; pass --allow-pickle if you trust it, or --no-info to convert without info"
)


def load_npz(path: str | os.PathLike[str], *, allow_pickle: bool = False, info: bool = True) -> dict[str, Any]:
    """Load an NPZ in the documented schema into a dict of arrays.

    Args:
        allow_pickle: allow unpickling `info` (only for files you trust).
        info: load `info`; False skips it (and the need for pickle).

    Raises:
        BagError: not an NPZ, a member whose header the bytes do not back, a documented key
            missing, misshapen or of the wrong type, or `info` needs pickle and `allow_pickle`
            is False (no member but `info` is ever unpickled).
    """
    p = Path(path)
    if not p.is_file():
        raise BagError(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    _check_magic(p)
    out = read_members(p, allow_pickle=allow_pickle, info=info)
    missing = [k for k in REQUIRED if k not in out]
    if missing:
        raise BagError(f"{p} lacks the documented key(s) {', '.join(missing)} (has {', '.join(out) or 'none'})")
    validate_rollout(out, p)
    return out


def _check_magic(p: Path) -> None:
    """Refuse a file that is not a zip before numpy tries to read it as a pickle."""
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise BagError(f"cannot read {p}: {e.strerror or e}") from None
    if head.startswith(ZIP_MAGIC):
        return
    if head.startswith(b"\x93NUMPY"):
        raise BagError(f"{p} is a single .npy array, not an .npz with obs, act, rew, ...")
    if not head:
        why = "the file is empty"
    elif head.startswith(b"\x89MCAP"):
        why = "it is an MCAP bag; to_npz converts a bag to an .npz"
    else:
        why = "it does not start with a zip header; an .npz is a zip archive of .npy arrays"
    raise BagError(f"{p} is not an .npz file ({why})")


def _as_array(v: Any, dtype: Any, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    if v is None:
        return None
    if hasattr(v, "detach"):  # a torch tensor pickled by another tool
        v = v.detach().cpu().numpy()
    a = np.asarray(v, dtype=dtype)
    return a.reshape(shape) if shape is not None else a


def npz_to_bag(
    npz_path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    allow_pickle: bool = False,
    info: bool = True,
    dt: float | None = None,
    start_time: int | None = None,
    compression: Compression = "none",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the rollout in an NPZ as a bag.

    Args:
        output: bag folder (or `.mcap` file) to create; default the NPZ's path without `.npz`.
        allow_pickle: unpickle `info` (reward terms, done flags, steps); see the module notes.
        info: use `info`; False converts without it (no reward terms, steps 0..T-1).
        dt: control step, seconds; default the NPZ's `dt`, else info's sim times, else 1/30.
        start_time: log time of the first step, ns; default now (Foxglove needs wall-clock times).
        compression: chunk compression of the bag.
        progress: called with (steps written, T).

    Returns:
        The bag path.
    """
    src = Path(npz_path)
    z = load_npz(src, allow_pickle=allow_pickle, info=info)
    out = Path(output) if output is not None else src.with_suffix("")
    obs = z["obs"]
    T, N, obs_dim = obs.shape
    act_dim = z["act"].shape[2]
    infos = z.get("info")

    def entry(t: int, key: str) -> Any:
        if infos is None:
            return None
        d = infos[t]
        return d.get(key) if isinstance(d, dict) else None

    steps = np.array([int(entry(t, "step")) if entry(t, "step") is not None else t for t in range(T)], np.int64)
    if "step" in z:
        steps = np.asarray(z["step"], np.int64)
    times = [entry(t, "sim_time") for t in range(T)]
    sim_times = np.array([float(x) for x in times], np.float64) if all(x is not None for x in times) else None
    if "sim_time" in z:
        sim_times = np.asarray(z["sim_time"], np.float64)
    if dt is None and "dt" in z:
        dt = float(z["dt"])
    if dt is None and sim_times is not None and T > 1 and np.all(np.diff(steps) > 0):
        dt = float(np.median(np.diff(sim_times) / np.diff(steps)))
    if dt is None or not dt > 0:
        dt = DEFAULT_DT
    if sim_times is None:
        sim_times = steps * dt
    term_names: list[str] = []
    first_terms = entry(0, "reward_terms") if T else None
    if isinstance(first_terms, dict):
        term_names = [str(k) for k in first_terms]
    extra_terms = [k[len("term_"):] for k in z if k.startswith("term_")]
    if not term_names and extra_terms:
        term_names = extra_terms

    t0 = time.time_ns() if start_time is None else int(start_time)
    offsets = np.round((sim_times - sim_times[0]) * 1e9).astype(np.int64) if T else np.zeros(0, np.int64)
    if T > 1 and not np.all(np.diff(offsets) > 0):  # sim time not increasing (resets): space steps by dt
        offsets = (np.arange(T) * dt * 1e9).astype(np.int64)

    def names(key: str) -> tuple[str, ...]:
        return tuple(str(x) for x in z[key].tolist()) if key in z else ()

    def flags(key: str) -> np.ndarray:
        if key in z:
            return np.asarray(z[key], bool).reshape(T, N)
        out = np.zeros((T, N), bool)
        for t in range(T):
            v = _as_array(entry(t, key), bool)
            if v is not None:
                out[t] = v.reshape(N)
        return out

    model = str(z["robot_model"]) if "robot_model" in z else ""
    model_format = str(z["robot_model_format"]) if "robot_model_format" in z else ""
    body_names, body_poses = names("body_names"), z.get("body_poses")
    if body_poses is None and not model:  # nothing to draw the robot with: draw the base
        body_names, model, model_format = (BASE_BODY,), BASE_MODEL, "mjcf"
        body_poses = np.concatenate([z["base_pos"], z["base_quat"]], axis=-1, dtype=np.float32)[:, :, None, :]
    elif body_poses is not None and len(body_names) != body_poses.shape[2]:
        body_names = tuple(f"body_{b}" for b in range(body_poses.shape[2]))
    try:
        terms = np.zeros((T, len(term_names), N), np.float32)
        for t in range(T):
            rt = entry(t, "reward_terms")
            for k, name in enumerate(term_names):
                if isinstance(rt, dict) and name in rt:
                    terms[t, k] = _as_array(rt[name], np.float32, (N,))
                elif f"term_{name}" in z:
                    terms[t, k] = z[f"term_{name}"][t]
                else:
                    raise BagError(f"{src}: reward term {name!r} is missing at step {int(steps[t])}")
        done, terminated, truncated = flags("done"), flags("terminated"), flags("truncated")
    except (ValueError, TypeError) as e:
        raise BagError(f"{src}: info at some step is not in the documented form ({e})") from None
    if not ("terminated" in z or any(entry(t, "terminated") is not None for t in range(T))):
        terminated = done & ~truncated  # only done flags: an episode that was not cut short ended
    env_info = EnvInfo(
        name=str(z["env"]) if "env" in z else f"npz:{src.name}",
        num_envs=N,
        obs_dim=obs_dim,
        act_dim=act_dim,
        dt=dt,
        body_names=body_names,
        joint_names=names("joint_names"),
        action_names=names("action_names"),
        reward_term_names=tuple(term_names),
        model_format=model_format,  # type: ignore[arg-type]
        model_text=model,
        env_spacing=0.0,  # poses in an NPZ are world poses, already laid out
    )
    arrays = RolloutArrays(
        steps=steps, sim_time=sim_times, obs=obs, act=z["act"], rew=z["rew"], terms=terms,
        base_pos=z["base_pos"], base_quat=z["base_quat"], done=done, terminated=terminated, truncated=truncated,
        joint_pos=z.get("joint_pos"), body_poses=body_poses,
        end_reasons=[entry(t, "end_reasons") or {} for t in range(T)] if infos is not None else None,
    )  # fmt: skip
    messages = RolloutMessages(env_info, tf_envs=(0,) if body_poses is not None else ())
    with BagWriter(out, compression=compression) as bag:
        write_records(bag, messages, arrays.records(), t0 + offsets, latched_stamp=t0, progress=progress)
    return out
