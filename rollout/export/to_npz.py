"""Bag -> NPZ: the six documented arrays (and opt-in extras) of a recorded rollout.

A step is a control step present in all three of /rollout/state, /rollout/action and
/rollout/reward_terms (matched by their `step` field), so a message the recorder missed drops
that step instead of misaligning the arrays. Each array is allocated once, [T, ...], and every
message's values are copied straight from the bag into it (only the envs asked for), so memory
stays near the size of the output.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rollout.bag import Bag
from rollout.errors import BagError
from rollout.export.npzfile import NpzWriter
from rollout.msg_checks import action_error, reward_terms_error, robot_error, state_error

from rollout.topics import ACTION, EPISODES, REWARD_TERMS, ROBOT, STATE

EXTRAS = ("joint_pos", "body_poses", "reward_terms", "flags", "robot")
"""Opt-in extra keys; none of them changes the six documented ones.

- joint_pos: `joint_pos` [T, N, J] float32.
- body_poses: `body_poses` [T, N, B, 7] float32 (x, y, z, qx, qy, qz, qw).
- reward_terms: `term_<name>` [T, N] float32 per reward term (no pickle needed to read them).
- flags: `step` [T] int64, `sim_time` [T] float64, `done`/`terminated`/`truncated` [T, N] bool,
  `env_ids` [N] int64 (which envs of the recording the N columns are).
- robot: from the robot description: `robot_model`, `robot_model_format`, `env` (0-d str),
  `body_names`, `joint_names`, `action_names` ([K] str), `dt` (0-d float64).
"""

Progress = Callable[[str, int, int], None]


@dataclass
class Rollout:
    """A rollout read from a bag: the NPZ arrays, in the order they are written."""

    arrays: dict[str, np.ndarray]
    steps: np.ndarray  # [T] control steps
    env_ids: np.ndarray  # [N] envs of the recording kept
    notes: list[str] = field(default_factory=list)  # what was skipped or missing, for the user


def _first_index(steps: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Position in `steps` of the first message of each wanted step (all present)."""
    uniq, first = np.unique(steps, return_index=True)
    return first[np.searchsorted(uniq, wanted)]


def _columns(env_ids: np.ndarray, width: int) -> np.ndarray:
    """Flat indices of the values of `env_ids` in an env-major [N * width] array."""
    return (env_ids[:, None] * width + np.arange(width)).ravel()


def _check_topics(bag: Bag) -> None:
    have = bag.topics
    missing = [t for t in (STATE, ACTION, REWARD_TERMS) if t not in have]
    if len(missing) == 3:
        names = ", ".join(have) or "none"
        raise BagError(f"{bag.path} has no rollout topics ({STATE}, {ACTION}, {REWARD_TERMS}); its topics: {names}")
    if missing:
        raise BagError(f"{bag.path} has no {' or '.join(missing)} topic; a rollout needs all three of state, action and reward terms")


@dataclass
class _Plan:
    """Which messages make the rollout's T steps, and the recording's dims."""

    bag: Bag
    steps: np.ndarray  # [T] int64
    sim_time: np.ndarray  # [T] float64
    state_ix: np.ndarray  # [T] message index in each topic
    act_ix: np.ndarray
    rew_ix: np.ndarray
    env_ids: np.ndarray  # [n] envs kept
    n_all: int
    obs_dim: int
    act_dim: int
    n_joints: int
    n_bodies: int
    notes: list[str]

    @property
    def T(self) -> int:
        return int(self.steps.size)

    @property
    def subset(self) -> bool:
        return self.env_ids.size != self.n_all or bool(np.any(self.env_ids != np.arange(self.n_all)))


def _plan(
    bag: Bag,
    envs: Sequence[int] | None,
    steps: tuple[int | None, int | None] | None,
    sim_time: tuple[float | None, float | None] | None,
) -> _Plan:
    _check_topics(bag)
    notes: list[str] = []
    s_meta = bag.read_arrays(STATE, ["step", "sim_time", "num_envs", "obs_dim", "num_joints", "num_bodies"])
    a_meta = bag.read_arrays(ACTION, ["step", "num_envs", "act_dim"])
    if bag.count(REWARD_TERMS) and (err := reward_terms_error(bag.decode(REWARD_TERMS, 0))) is not None:
        raise BagError(f"{bag.path}: {err}")  # before decoding them all: a message can hold 300k terms
    r_steps = bag.read_arrays(REWARD_TERMS, ["step"])["step"]
    common = np.intersect1d(np.intersect1d(s_meta["step"], a_meta["step"]), r_steps)
    partial = np.union1d(np.union1d(s_meta["step"], a_meta["step"]), r_steps).size - common.size
    if partial:
        notes.append(f"{partial} steps are missing from some of the three topics and were skipped")
    state_ix = _first_index(s_meta["step"], common)
    keep = np.ones(common.size, bool)
    if steps is not None:
        if steps[0] is not None:
            keep &= common >= steps[0]
        if steps[1] is not None:
            keep &= common < steps[1]
    if sim_time is not None:
        t = s_meta["sim_time"][state_ix]
        if sim_time[0] is not None:
            keep &= t >= sim_time[0]
        if sim_time[1] is not None:
            keep &= t < sim_time[1]
    common, state_ix = common[keep], state_ix[keep]
    if common.size == 0:
        raise BagError(f"{bag.path}: no control step is in all of {STATE}, {ACTION} and {REWARD_TERMS} within the range asked for")
    act_ix = _first_index(a_meta["step"], common)
    for topic, meta, ix, names in (
        (STATE, s_meta, state_ix, ("num_envs", "obs_dim", "num_joints", "num_bodies")),
        (ACTION, a_meta, act_ix, ("num_envs", "act_dim")),
    ):
        for name in names:
            if np.any(meta[name][ix] != meta[name][ix[0]]):
                raise BagError(f"{topic}: {name} changes during the recording; it cannot be stacked into one array")
    # the dims below size the output: the first messages' arrays must back what they declare
    first_state = bag.decode(STATE, int(state_ix[0]))
    errors = [state_error(first_state), action_error(bag.decode(ACTION, int(act_ix[0])))]
    if ROBOT in bag.topics and bag.count(ROBOT):
        errors.append(robot_error(bag.decode(ROBOT, bag.count(ROBOT) - 1), first_state))
    if err := next((e for e in errors if e is not None), None):
        raise BagError(f"{bag.path}: {err}")
    n_all = int(s_meta["num_envs"][state_ix[0]])
    if int(a_meta["num_envs"][act_ix[0]]) != n_all:
        raise BagError(f"{ACTION} has {int(a_meta['num_envs'][act_ix[0]])} envs but {STATE} has {n_all}")
    env_ids = np.arange(n_all) if envs is None else np.asarray(envs, dtype=np.int64).reshape(-1)
    if env_ids.size == 0 or env_ids.min() < 0 or env_ids.max() >= n_all:
        raise BagError(f"envs must be between 0 and {n_all - 1} (the recording has {n_all} envs), got {env_ids.tolist()}")
    return _Plan(
        bag, common.astype(np.int64), s_meta["sim_time"][state_ix].astype(np.float64), state_ix, act_ix,
        _first_index(r_steps, common), env_ids, n_all, int(s_meta["obs_dim"][state_ix[0]]),
        int(a_meta["act_dim"][act_ix[0]]), int(s_meta["num_joints"][state_ix[0]]),
        int(s_meta["num_bodies"][state_ix[0]]), notes,
    )  # fmt: skip


def _rows(plan: _Plan, topic: str, field_name: str, width: int, update: Callable[[int], None]) -> Iterator[np.ndarray]:
    """Each selected message's `field_name` ([n_all * width] values) cut to the kept envs."""
    ix = plan.state_ix if topic == STATE else plan.act_ix
    cols = _columns(plan.env_ids, width) if plan.subset else None
    buf = np.empty(plan.env_ids.size * width, np.float32) if cols is not None else None
    for t, m in enumerate(plan.bag.iter_decoded(topic, ix)):
        v = getattr(m, field_name)
        if v.size != plan.n_all * width:
            raise BagError(
                f"{topic}: {field_name} has {v.size} values at step {int(plan.steps[t])}, "
                f"expected {plan.n_all} envs x {width}"
            )
        yield v if cols is None else np.take(v, cols, out=buf)
        if t % 16 == 0:
            update(t)
    update(plan.T)


def _small_state(plan: _Plan) -> dict[str, np.ndarray]:
    """base_pos, base_quat and the done flags of every step, [T, n, ...]."""
    e, n = plan.env_ids, plan.env_ids.size
    take = {"base_pos": _columns(e, 3), "base_quat": _columns(e, 4), "done": e, "terminated": e, "truncated": e}
    out = {k: np.empty((plan.T, n * w), np.float32 if w > 1 else bool) for k, w in
           (("base_pos", 3), ("base_quat", 4), ("done", 1), ("terminated", 1), ("truncated", 1))}  # fmt: skip
    first = plan.bag.decode(STATE, int(plan.state_ix[0]))
    for k, w in (("base_pos", 3), ("base_quat", 4), ("done", 1), ("terminated", 1), ("truncated", 1)):
        size = getattr(first, k).size
        if size != plan.n_all * w:
            raise BagError(f"{STATE}: {k} has {size} values per message, expected {plan.n_all} envs x {w}")
    del first
    plan.bag.read_arrays(STATE, list(out), indices=plan.state_ix, take=take, out=out)
    return {
        "base_pos": out["base_pos"].reshape(plan.T, n, 3),
        "base_quat": out["base_quat"].reshape(plan.T, n, 4),
        "done": out["done"],
        "terminated": out["terminated"],
        "truncated": out["truncated"],
    }


def _rewards(plan: _Plan, update: Callable[[int], None]) -> tuple[np.ndarray, list[str], list[np.ndarray]]:
    """rew [T, n] and each reward term's [T, n] values, in the recorded term order."""
    T, e, n = plan.T, plan.env_ids, plan.env_ids.size
    rew = np.empty((T, n), np.float32)
    names: list[str] = []
    terms: list[np.ndarray] = []
    for t, m in enumerate(plan.bag.iter_decoded(REWARD_TERMS, plan.rew_ix)):
        if t == 0:
            names = [term.name for term in m.terms]
            terms = [np.empty((T, n), np.float32) for _ in names]
        if m.total.size != plan.n_all:
            raise BagError(f"{REWARD_TERMS}: total has {m.total.size} values at step {int(plan.steps[t])}, expected {plan.n_all}")
        np.take(m.total, e, out=rew[t])
        ordered = m.terms
        if [term.name for term in m.terms] != names:
            by_name = {term.name: term for term in m.terms}
            missing = [x for x in names if x not in by_name]
            if missing:
                raise BagError(f"{REWARD_TERMS}: term {missing[0]!r} is missing at step {int(plan.steps[t])}")
            ordered = [by_name[x] for x in names]
        for k, term in enumerate(ordered):
            if term.value.size != plan.n_all:
                raise BagError(f"{REWARD_TERMS}: term {term.name!r} has {term.value.size} values, expected {plan.n_all}")
            np.take(term.value, e, out=terms[k][t])
        if t % 64 == 0:
            update(t)
    update(T)
    return rew, names, terms


def _end_reasons(plan: _Plan) -> dict[int, dict[int, str]]:
    """{step: {column: reason}} for the kept envs whose episode ended, from /rollout/episodes."""
    if EPISODES not in plan.bag.topics or plan.bag.count(EPISODES) == 0:
        return {}
    column = {int(e): k for k, e in enumerate(plan.env_ids)}
    out: dict[int, dict[int, str]] = {}
    for m in plan.bag.iter_decoded(EPISODES):
        reasons = list(getattr(m, "reasons", None) or [])  # bags recorded before reasons existed have none
        if len(reasons) != len(m.env_ids):
            reasons = ["terminated" if x else "truncated" for x in m.terminated]
        kept = {column[int(e)]: str(r) for e, r in zip(m.env_ids, reasons) if int(e) in column}
        if kept:
            out.setdefault(int(m.step), {}).update(kept)
    return out


def _info(plan: _Plan, small: dict[str, np.ndarray], names: list[str], terms: list[np.ndarray]) -> np.ndarray:
    info = np.empty(plan.T, dtype=object)
    reasons = _end_reasons(plan)
    for t in range(plan.T):
        info[t] = {
            "reward_terms": {name: terms[k][t] for k, name in enumerate(names)},
            "step": int(plan.steps[t]),
            "sim_time": float(plan.sim_time[t]),
            "done": small["done"][t],
            "terminated": small["terminated"][t],
            "truncated": small["truncated"][t],
            "end_reasons": reasons.get(int(plan.steps[t]), {}),
        }
    return info


def _extras_small(plan: _Plan, extras: Sequence[str], small: dict, names: list[str], terms: list[np.ndarray]) -> dict:
    out: dict[str, np.ndarray] = {}
    if "reward_terms" in extras:
        for name, values in zip(names, terms):
            out[f"term_{name}"] = values
    if "flags" in extras:
        out |= {"step": plan.steps, "sim_time": plan.sim_time, "done": small["done"], "terminated": small["terminated"],
                "truncated": small["truncated"], "env_ids": plan.env_ids.astype(np.int64)}  # fmt: skip
    if "robot" in extras:
        robot = _robot_arrays(plan.bag)
        if robot is None:
            plan.notes.append(f"the bag has no {ROBOT} message; the robot extra keys were left out")
        else:
            out |= robot
    return out


def _check_extras(extras: Sequence[str]) -> None:
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise BagError(f"unknown extra {unknown[0]!r}; choose from {', '.join(EXTRAS)}")


def _ticker(progress: Progress | None, stage: str, total: int) -> Callable[[int], None]:
    return (lambda done: progress(stage, done, total)) if progress is not None else (lambda done: None)


def read_rollout(
    bag: Bag | str | os.PathLike[str],
    *,
    envs: Sequence[int] | None = None,
    steps: tuple[int | None, int | None] | None = None,
    sim_time: tuple[float | None, float | None] | None = None,
    extras: Sequence[str] = (),
    progress: Progress | None = None,
) -> Rollout:
    """Read a rollout from a bag into the NPZ arrays, in memory.

    Args:
        bag: an open `Bag` (or `ShardView`) or a bag path.
        envs: keep only these envs (in this order); default all.
        steps: keep control steps in [start, stop) (either end None: open).
        sim_time: keep steps whose sim time, seconds, is in [start, stop).
        extras: extra keys to add, from `EXTRAS`.
        progress: called as progress(stage, done, total) while reading.

    Returns:
        A `Rollout` whose `arrays` hold obs, act, rew, info, base_pos, base_quat (+ extras).
    """
    if isinstance(bag, (str, os.PathLike)):  # else a Bag, or a shard of one (rollout.bag.shards)
        with Bag(bag) as opened:
            return read_rollout(opened, envs=envs, steps=steps, sim_time=sim_time, extras=extras, progress=progress)
    _check_extras(extras)
    plan = _plan(bag, envs, steps, sim_time)
    T, n = plan.T, plan.env_ids.size

    def stack(topic: str, field_name: str, width: int, shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty((T, n * width), np.float32)
        for t, row in enumerate(_rows(plan, topic, field_name, width, _ticker(progress, field_name, T))):
            out[t] = row
        return out.reshape(shape)

    arrays: dict[str, np.ndarray] = {
        "obs": stack(STATE, "obs", plan.obs_dim, (T, n, plan.obs_dim)),
        "act": stack(ACTION, "action", plan.act_dim, (T, n, plan.act_dim)),
    }
    small = _small_state(plan)
    rew, names, terms = _rewards(plan, _ticker(progress, "reward terms", T))
    arrays |= {"rew": rew, "info": _info(plan, small, names, terms), "base_pos": small["base_pos"],
               "base_quat": small["base_quat"]}  # fmt: skip
    if "joint_pos" in extras:
        arrays["joint_pos"] = stack(STATE, "joint_pos", plan.n_joints, (T, n, plan.n_joints))
    if "body_poses" in extras:
        arrays["body_poses"] = stack(STATE, "body_poses", plan.n_bodies * 7, (T, n, plan.n_bodies, 7))
    arrays |= _extras_small(plan, extras, small, names, terms)
    return Rollout(arrays, plan.steps, plan.env_ids, plan.notes)


def _robot_arrays(bag: Bag) -> dict[str, np.ndarray] | None:
    if ROBOT not in bag.topics or bag.count(ROBOT) == 0:
        return None
    m = bag.decode(ROBOT, bag.count(ROBOT) - 1)
    return {
        "robot_model": np.array(m.model),
        "robot_model_format": np.array(m.model_format),
        "env": np.array(m.env),
        "body_names": np.array(m.body_names, dtype=str),
        "joint_names": np.array(m.joint_names, dtype=str),
        "action_names": np.array(m.action_names, dtype=str),
        "dt": np.array(m.dt, dtype=np.float64),
    }


def default_output(bag_path: str | os.PathLike[str]) -> Path:
    """`<bag>.npz` next to the bag (a folder `runs/a` gives `runs/a.npz`, `x.mcap` gives `x.npz`)."""
    p = Path(bag_path)
    return p.with_suffix(".npz") if p.suffix == ".mcap" else p.parent / (p.name + ".npz")


@dataclass(frozen=True)
class Written:
    """What `bag_to_npz` wrote."""

    path: Path
    shape: tuple[int, int]  # (T, N)
    keys: list[str]
    notes: list[str]


def bag_to_npz(
    bag_path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    envs: Sequence[int] | None = None,
    steps: tuple[int | None, int | None] | None = None,
    sim_time: tuple[float | None, float | None] | None = None,
    extras: Sequence[str] = (),
    compressed: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Written:
    """Convert a bag to an .npz in the documented schema; see `read_rollout` for the options.

    The large arrays (obs, act, joint_pos, body_poses) are streamed from the bag into the file
    one message at a time, so memory stays far below the output size; the small ones (rew,
    info, base pose, flags) are built in memory. The file appears only when complete.
    """
    _check_extras(extras)
    out = Path(output) if output is not None else default_output(bag_path)
    if out.suffix != ".npz":
        raise BagError(f"output {out} must end in .npz")
    if out.exists() and not overwrite:
        raise BagError(f"{out} already exists; pass --force to overwrite it")
    with Bag(bag_path) as bag:
        plan = _plan(bag, envs, steps, sim_time)
        T, n = plan.T, int(plan.env_ids.size)
        try:
            with NpzWriter(out, compressed=compressed) as npz:
                npz.stream("obs", (T, n, plan.obs_dim), np.float32,
                           _rows(plan, STATE, "obs", plan.obs_dim, _ticker(progress, "obs", T)))  # fmt: skip
                npz.stream("act", (T, n, plan.act_dim), np.float32,
                           _rows(plan, ACTION, "action", plan.act_dim, _ticker(progress, "act", T)))  # fmt: skip
                small = _small_state(plan)
                rew, names, terms = _rewards(plan, _ticker(progress, "reward terms", T))
                npz.add("rew", rew)
                npz.add("info", _info(plan, small, names, terms))
                npz.add("base_pos", small["base_pos"])
                npz.add("base_quat", small["base_quat"])
                if "joint_pos" in extras:
                    npz.stream("joint_pos", (T, n, plan.n_joints), np.float32,
                               _rows(plan, STATE, "joint_pos", plan.n_joints, _ticker(progress, "joint_pos", T)))  # fmt: skip
                if "body_poses" in extras:
                    width = plan.n_bodies * 7
                    npz.stream("body_poses", (T, n, plan.n_bodies, 7), np.float32,
                               _rows(plan, STATE, "body_poses", width, _ticker(progress, "body_poses", T)))  # fmt: skip
                for key, value in _extras_small(plan, extras, small, names, terms).items():
                    npz.add(key, value)
        except OSError as e:
            raise BagError(f"cannot write {out}: {e.strerror or e}") from None
        return Written(out, (T, n), list(npz.keys), plan.notes)
