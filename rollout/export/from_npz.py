"""NPZ -> bag: turn an .npz in the documented schema into a bag the replay node and viewer play.

NPZ files made by other tools (ProtoMotions' exporter this project grew out of) often have only
the six documented keys: then the bag gets State (obs, base pose, done flags from `info`),
Action and RewardTerms messages, and a RobotDescription with what can be inferred (env count,
dims, reward term names, dt) and no robot model. The viewer then shows the reward plots, the
timeline and each env's base pose, but no robot body (that needs a model and body poses, which
an NPZ written by `to_npz --extra robot,body_poses,joint_pos` carries).

`info` is a pickled object array: unpickling runs code chosen by whoever made the file, so it
is loaded only when the caller passes `allow_pickle=True` (`--allow-pickle`).
"""

from __future__ import annotations

import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rollout import __version__
from rollout.bag import BagWriter
from rollout.bag.compression import Compression
from rollout.codec import get_type, serialize
from rollout.errors import BagError
from rollout.export.to_npz import ACTION, REWARD, ROBOT, STATE

DEFAULT_DT = 1.0 / 30.0  # used only when neither --dt, the NPZ's dt nor info's sim times give one
REQUIRED = ("obs", "act", "rew", "base_pos", "base_quat")

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
        BagError: not an NPZ, a documented key missing or misshapen, or `info` needs pickle
            and `allow_pickle` is False.
    """
    p = Path(path)
    if not p.is_file():
        raise BagError(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    try:
        z = np.load(p, allow_pickle=allow_pickle)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise BagError(f"{p} is not an .npz file ({e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise BagError(f"{p} is a single .npy array, not an .npz with obs, act, rew, ...")
    out: dict[str, Any] = {}
    with z:
        for key in z.files:
            if key == "info" and not info:
                continue
            try:
                out[key] = z[key]
            except ValueError as e:
                if key == "info" and "allow_pickle" in str(e):
                    raise BagError(f"{p}: {PICKLE_HINT}") from None
                raise BagError(f"{p}: key {key!r} cannot be read ({e})") from None
            except (OSError, zipfile.BadZipFile, EOFError) as e:
                raise BagError(f"{p}: key {key!r} is corrupt ({e})") from None
    missing = [k for k in REQUIRED if k not in out]
    if missing:
        raise BagError(f"{p} lacks the documented key(s) {', '.join(missing)} (has {', '.join(z.files)})")
    obs, act = out["obs"], out["act"]
    if obs.ndim != 3 or act.ndim != 3:
        raise BagError(f"{p}: obs and act must be [T, N, dim], got {obs.shape} and {act.shape}")
    T, N = obs.shape[:2]
    expect = {"act": (T, N), "rew": (T, N), "base_pos": (T, N, 3), "base_quat": (T, N, 4)}
    for key, shape in expect.items():
        if out[key].shape[: len(shape)] != shape or (key != "act" and out[key].shape != shape):
            raise BagError(f"{p}: {key} has shape {out[key].shape}, expected {shape + ('act_dim',) if key == 'act' else shape}")
    if "info" in out and out["info"].shape != (T,):
        raise BagError(f"{p}: info has shape {out['info'].shape}, expected ({T},)")
    return out


def _as_array(v: Any, dtype: Any, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    if v is None:
        return None
    if hasattr(v, "detach"):  # a torch tensor pickled by another tool
        v = v.detach().cpu().numpy()
    a = np.asarray(v, dtype=dtype)
    return a.reshape(shape) if shape is not None else a


def _stamp(header_cls: type, ns: int) -> Any:
    h = header_cls()
    h.stamp.sec, h.stamp.nanosec = ns // 1_000_000_000, ns % 1_000_000_000
    return h


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

    State = get_type("rollout_msgs/msg/State")
    Action = get_type("rollout_msgs/msg/Action")
    RewardTerms = get_type("rollout_msgs/msg/RewardTerms")
    RewardTerm = get_type("rollout_msgs/msg/RewardTerm")
    Robot = get_type("rollout_msgs/msg/RobotDescription")
    Header = get_type("std_msgs/msg/Header")

    t0 = time.time_ns() if start_time is None else int(start_time)
    offsets = np.round((sim_times - sim_times[0]) * 1e9).astype(np.int64) if T else np.zeros(0, np.int64)
    if T > 1 and not np.all(np.diff(offsets) > 0):  # sim time not increasing (resets): space steps by dt
        offsets = (np.arange(T) * dt * 1e9).astype(np.int64)
    joint_pos = z.get("joint_pos")
    body_poses = z.get("body_poses")
    n_joints = joint_pos.shape[2] if joint_pos is not None else 0
    n_bodies = body_poses.shape[2] if body_poses is not None else 0

    def names(key: str) -> list[str]:
        return [str(x) for x in z[key].tolist()] if key in z else []

    def flags(t: int, key: str) -> np.ndarray:
        if key in z:
            return np.asarray(z[key][t], bool)
        v = _as_array(entry(t, key), bool)
        if v is None:
            return np.zeros(N, bool)
        return v.reshape(N)

    try:
        with BagWriter(out, compression=compression) as bag:
            bag.add_topic(ROBOT, Robot.__msgtype__, latched=True)
            bag.add_topic(STATE, State.__msgtype__)
            bag.add_topic(ACTION, Action.__msgtype__)
            bag.add_topic(REWARD, RewardTerms.__msgtype__)
            robot = Robot(
                header=_stamp(Header, t0),
                model_format=str(z["robot_model_format"]) if "robot_model_format" in z else "",
                model=str(z["robot_model"]) if "robot_model" in z else "",
                body_names=names("body_names"),
                joint_names=names("joint_names"),
                action_names=names("action_names"),
                reward_term_names=term_names,
                dt=dt,
                num_envs=N,
                obs_dim=obs_dim,
                act_dim=act_dim,
                env_spacing=0.0,  # poses in an NPZ are world poses, already laid out
                env=str(z["env"]) if "env" in z else f"npz:{src.name}",
                seed=0,
                policy="",
                policy_sha256="",
                rollout_version=__version__,
            )
            bag.write(ROBOT, serialize(robot), t0)
            for t in range(T):
                ns = t0 + int(offsets[t])
                step, sim_time = int(steps[t]), float(sim_times[t])
                done = flags(t, "done")
                state = State(
                    header=_stamp(Header, ns), step=step, sim_time=sim_time, num_envs=N, obs_dim=obs_dim,
                    num_joints=n_joints, num_bodies=n_bodies,
                    obs=np.asarray(obs[t], np.float32), base_pos=np.asarray(z["base_pos"][t], np.float32),
                    base_quat=np.asarray(z["base_quat"][t], np.float32),
                    joint_pos=np.asarray(joint_pos[t], np.float32) if joint_pos is not None else np.zeros(0, np.float32),
                    body_poses=np.asarray(body_poses[t], np.float32) if body_poses is not None else np.zeros(0, np.float32),
                    done=done, terminated=flags(t, "terminated"), truncated=flags(t, "truncated"),
                )  # fmt: skip
                bag.write(STATE, serialize(state), ns)
                action = Action(
                    header=_stamp(Header, ns), step=step, sim_time=sim_time, num_envs=N, act_dim=act_dim,
                    policy_enabled=True, action=np.asarray(z["act"][t], np.float32),
                )  # fmt: skip
                bag.write(ACTION, serialize(action), ns)
                rt = entry(t, "reward_terms")
                terms = []
                for name in term_names:
                    if isinstance(rt, dict) and name in rt:
                        value = _as_array(rt[name], np.float32, (N,))
                    elif f"term_{name}" in z:
                        value = np.asarray(z[f"term_{name}"][t], np.float32)
                    else:
                        raise BagError(f"{src}: reward term {name!r} is missing at step {step}")
                    terms.append(RewardTerm(name=name, mean=float(value.mean()) if N else 0.0, value=value))
                total = np.asarray(z["rew"][t], np.float32)
                reward = RewardTerms(
                    header=_stamp(Header, ns), step=step, sim_time=sim_time, terms=terms,
                    total_mean=float(total.mean()) if N else 0.0, total=total,
                )  # fmt: skip
                bag.write(REWARD, serialize(reward), ns)
                if progress is not None and (t % 64 == 0 or t == T - 1):
                    progress(t + 1, T)
    except (ValueError, TypeError) as e:
        raise BagError(f"{src}: info at some step is not in the documented form ({e})") from None
    return out
