"""The moments of a run worth looking at, from its whole-run series (no viser, no middleware).

    series = RunSeries.from_timeline(timeline_msg)
    for m in find_moments(series, env=3):        # or env=None: across every env
        print(m.kind, m.step, m.env, m.value, m.label)

Kinds, in the order they are listed: the earliest terminations (with the env's reason when it
gave one), the lowest and the highest total reward step, each term's minimum and maximum, and the
largest one-step drops of the total. Whole-array numpy; a NaN (a term missing at a step) never
counts as an extreme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Kind = Literal["termination", "lowest", "highest", "term_min", "term_max", "drop"]


@dataclass(frozen=True)
class Moment:
    """One step of one env worth a look."""

    kind: Kind
    step: int
    env: int
    value: float
    """The total (lowest/highest/drop: the size of the drop), the term's value, or the episode length."""
    label: str
    """One line for the Find panel, e.g. "env 3 terminated at step 41 (fell)"."""


@dataclass(frozen=True)
class RunSeries:
    """A run's series as arrays: steps [S] (sorted), env_ids [E], total [S, E], terms [K, S, E],
    and every episode end: end_steps [V], end_envs [V], end_terminated [V] (bool), end_reasons [V].

    A Timeline with the all-env fields adds every env's total (all_total [S, N]) and each term's
    extremes per env with their steps (term_low, term_high, term_low_steps, term_high_steps
    [K, N]); then Find covers envs 0..N-1, not only env_ids.
    """

    steps: np.ndarray
    env_ids: np.ndarray
    term_names: tuple[str, ...]
    total: np.ndarray
    terms: np.ndarray
    end_steps: np.ndarray
    end_envs: np.ndarray
    end_terminated: np.ndarray
    end_reasons: tuple[str, ...]
    all_total: np.ndarray | None = None
    term_low: np.ndarray | None = None
    term_low_steps: np.ndarray | None = None
    term_high: np.ndarray | None = None
    term_high_steps: np.ndarray | None = None

    @property
    def num_envs(self) -> int:
        """Envs Find covers: every env of the run when the Timeline has them, else env_ids."""
        return self.all_total.shape[1] if self.all_total is not None else len(self.env_ids)

    @property
    def covers_all(self) -> bool:
        return self.all_total is not None

    @classmethod
    def from_timeline(cls, msg: Any) -> RunSeries:
        """From a rollout_msgs/Timeline (a Timeline without end flags counts every end as terminated)."""
        s, e, k = len(msg.steps), len(msg.env_ids), len(msg.term_names)
        steps = np.asarray(msg.steps, np.int64)
        order = np.argsort(steps, kind="stable")
        ends = len(msg.episode_steps)
        flags = np.asarray(getattr(msg, "episode_terminated", ()), bool)
        reasons = tuple(getattr(msg, "episode_reasons", ()) or ())
        n = int(getattr(msg, "num_envs", 0) or 0)
        every = {}
        if n and len(msg.total_all) == s * n and len(msg.term_min) == k * n:
            every = {
                "all_total": np.asarray(msg.total_all, np.float32).reshape(s, n)[order],
                "term_low": np.asarray(msg.term_min, np.float32).reshape(k, n),
                "term_low_steps": np.asarray(msg.term_min_steps, np.int64).reshape(k, n),
                "term_high": np.asarray(msg.term_max, np.float32).reshape(k, n),
                "term_high_steps": np.asarray(msg.term_max_steps, np.int64).reshape(k, n),
            }
        return cls(
            steps=steps[order],
            env_ids=np.asarray(msg.env_ids, np.int64),
            term_names=tuple(msg.term_names),
            total=np.asarray(msg.total, np.float32).reshape(s, e)[order],
            terms=np.asarray(msg.terms, np.float32).reshape(k, s, e)[:, order],
            end_steps=np.asarray(msg.episode_steps, np.int64),
            end_envs=np.asarray(msg.episode_envs, np.int64),
            end_terminated=flags if flags.size == ends else np.ones(ends, bool),
            end_reasons=reasons if len(reasons) == ends else ("",) * ends,
            **every,
        )


def find_moments(series: RunSeries, env: int | None = None, *, per_kind: int = 3) -> list[Moment]:
    """The moments of `env` (None: every env of the series), at most `per_kind` of each kind
    (terminations, drops) and one of each extreme."""
    out = terminations(series, env, per_kind)
    if series.covers_all:
        n = series.num_envs
        ids = np.arange(n) if env is None else np.asarray([env] if 0 <= env < n else [], np.int64)
        total = series.all_total[:, ids]
        term_extremes = _extremes_per_env(series, ids)
    else:
        cols = np.arange(len(series.env_ids)) if env is None else np.flatnonzero(series.env_ids == env)
        ids, total = series.env_ids[cols], series.total[:, cols]
        term_extremes = _extremes_of_series(series, cols)
    if len(series.steps) == 0 or ids.size == 0:
        return out
    steps = series.steps
    for kind, word in (("lowest", "lowest"), ("highest", "highest")):
        got = _extreme(total, lowest=kind == "lowest")
        if got is not None:
            t, c, v = got
            text = f"{word} total {v:+.3f}: env {ids[c]}, step {steps[t]}"
            out.append(Moment(kind, int(steps[t]), int(ids[c]), v, text))
    for name, kind, step, e, v in term_extremes:
        word = "min" if kind == "term_min" else "max"
        out.append(Moment(kind, step, e, v, f"{name} {word} {v:+.3f}: env {e}, step {step}"))
    out += drops(steps, ids, total, per_kind)
    return out


def _extremes_of_series(series: RunSeries, cols: np.ndarray) -> list[tuple[str, Kind, int, int, float]]:
    """(term, kind, step, env, value) of each term's min and max over the columns `cols`."""
    out: list[tuple[str, Kind, int, int, float]] = []
    if len(series.steps) == 0 or cols.size == 0:
        return out
    for name, values in zip(series.term_names, series.terms[:, :, cols]):
        for kind in ("term_min", "term_max"):
            got = _extreme(values, lowest=kind == "term_min")
            if got is not None:
                t, c, v = got
                out.append((name, kind, int(series.steps[t]), int(series.env_ids[cols[c]]), v))
    return out


def _extremes_per_env(series: RunSeries, ids: np.ndarray) -> list[tuple[str, Kind, int, int, float]]:
    """The same from the per-env extremes of every env: over the envs `ids`, the earliest step
    (then the lowest env) of the lowest (highest) value."""
    out: list[tuple[str, Kind, int, int, float]] = []
    if ids.size == 0:
        return out
    for k, name in enumerate(series.term_names):
        for kind, values, at in (
            ("term_min", series.term_low, series.term_low_steps),
            ("term_max", series.term_high, series.term_high_steps),
        ):
            v, when = values[k, ids], at[k, ids]
            ok = np.isfinite(v)
            if not ok.any():
                continue
            best = v[ok].min() if kind == "term_min" else v[ok].max()
            tied = np.flatnonzero(ok & (v == best))
            i = tied[np.lexsort((ids[tied], when[tied]))[0]]
            out.append((name, kind, int(when[i]), int(ids[i]), float(v[i])))
    return out


def terminations(series: RunSeries, env: int | None, count: int) -> list[Moment]:
    """The `count` earliest terminations (not truncations) of `env` (None: any env)."""
    keep = series.end_terminated.copy()
    if env is not None:
        keep &= series.end_envs == env
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((series.end_envs[idx], series.end_steps[idx]))][:count]
    out = []
    for i in idx.tolist():
        step, e, why = int(series.end_steps[i]), int(series.end_envs[i]), series.end_reasons[i]
        earlier = series.end_steps[(series.end_envs == e) & (series.end_steps < step)]
        start = int(earlier.max()) + 1 if earlier.size else int(series.steps[0]) if len(series.steps) else 0
        reason = f" ({why})" if why and why != "terminated" else ""
        text = f"env {e} terminated at step {step}{reason}"
        out.append(Moment("termination", step, e, float(step - start + 1), text))
    return out


def drops(steps: np.ndarray, ids: np.ndarray, total: np.ndarray, count: int) -> list[Moment]:
    """The `count` largest one-step falls of the total [S, C] (at the step after the fall),
    between consecutive recorded steps only."""
    if len(steps) < 2:
        return []
    fall = total[:-1] - total[1:]  # [S - 1, C], positive: the total fell
    fall[np.diff(steps) != 1] = np.nan  # a gap in the recording is not one step
    fall = np.where(np.isfinite(fall) & (fall > 0), fall, -np.inf)
    flat = fall.reshape(-1)
    if flat.size > count:  # only the candidates: a full sort of [S, 4,096 envs] takes 0.3 s
        kth = np.partition(flat, flat.size - count)[flat.size - count]
        pick = np.flatnonzero(flat >= kth)
    else:
        pick = np.arange(flat.size)
    flat = pick[np.lexsort((pick, -flat[pick]))][:count]  # the largest; ties: the earliest first
    out = []
    for t, c in zip(*np.unravel_index(flat, fall.shape)):
        v = float(fall[t, c])
        if not np.isfinite(v):
            break
        s, e = int(steps[t + 1]), int(ids[c])
        out.append(Moment("drop", s, e, v, f"drop {-v:+.3f}: env {e}, step {s - 1} to {s}"))
    return out


def _extreme(values: np.ndarray, *, lowest: bool) -> tuple[int, int, float] | None:
    """(row, column, value) of the min (max) of [S, C] ignoring NaN; the earliest when tied."""
    ok = np.isfinite(values)
    if not ok.any():
        return None
    filled = np.where(ok, values, np.inf if lowest else -np.inf)
    t, c = np.unravel_index(int(np.argmin(filled) if lowest else np.argmax(filled)), values.shape)
    return int(t), int(c), float(values[t, c])
