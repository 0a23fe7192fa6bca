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
    and every episode end: end_steps [V], end_envs [V], end_terminated [V] (bool), end_reasons [V]."""

    steps: np.ndarray
    env_ids: np.ndarray
    term_names: tuple[str, ...]
    total: np.ndarray
    terms: np.ndarray
    end_steps: np.ndarray
    end_envs: np.ndarray
    end_terminated: np.ndarray
    end_reasons: tuple[str, ...]

    @classmethod
    def from_timeline(cls, msg: Any) -> RunSeries:
        """From a rollout_msgs/Timeline (a Timeline without end flags counts every end as terminated)."""
        s, e, k = len(msg.steps), len(msg.env_ids), len(msg.term_names)
        steps = np.asarray(msg.steps, np.int64)
        order = np.argsort(steps, kind="stable")
        ends = len(msg.episode_steps)
        flags = np.asarray(getattr(msg, "episode_terminated", ()), bool)
        reasons = tuple(getattr(msg, "episode_reasons", ()) or ())
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
        )


def find_moments(series: RunSeries, env: int | None = None, *, per_kind: int = 3) -> list[Moment]:
    """The moments of `env` (None: every env of the series), at most `per_kind` of each kind
    (terminations, drops) and one of each extreme."""
    cols = np.arange(len(series.env_ids)) if env is None else np.flatnonzero(series.env_ids == env)
    out = terminations(series, env, per_kind)
    if len(series.steps) == 0 or cols.size == 0:
        return out
    steps, ids = series.steps, series.env_ids[cols]
    total = series.total[:, cols]
    for kind, word in (("lowest", "lowest"), ("highest", "highest")):
        got = _extreme(total, lowest=kind == "lowest")
        if got is not None:
            t, c, v = got
            text = f"{word} total {v:+.3f}: env {ids[c]}, step {steps[t]}"
            out.append(Moment(kind, int(steps[t]), int(ids[c]), v, text))
    for name, values in zip(series.term_names, series.terms[:, :, cols]):
        for kind, word in (("term_min", "min"), ("term_max", "max")):
            got = _extreme(values, lowest=kind == "term_min")
            if got is not None:
                t, c, v = got
                text = f"{name} {word} {v:+.3f}: env {ids[c]}, step {steps[t]}"
                out.append(Moment(kind, int(steps[t]), int(ids[c]), v, text))
    out += drops(steps, ids, total, per_kind)
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
    flat = np.argsort(-fall, axis=None, kind="stable")[:count]  # ties: the earliest first
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
