"""What the web viewer remembers between messages, as whole numpy arrays (no viser, no middleware).

- `instance_transforms`: `State.body_poses` -> per-body batched positions and wxyz quaternions.
- `Trails`: the last L base positions of every drawn env, as line segments.
- `PoseHistory`: the last H body poses of a live run, so a live view can be paused and scrubbed.
- `RewardSeries`: every reward term and the total per step and env (a replay's Timeline, or
  the RewardTerms seen live), for the plot and the per-step table.
- `EpisodeLog`: where episodes start, per env, for "previous/next episode".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def neighbour_step(steps: np.ndarray, current: int, delta: int) -> int:
    """The recorded step `delta` places from `current` in sorted `steps` (clamped to the ends);
    `current + delta` when nothing is known."""
    if len(steps) == 0:
        return max(current + delta, 0)
    i = int(np.searchsorted(steps, current, "left"))  # steps[i] is the first recorded step >= current
    exact = i < len(steps) and steps[i] == current
    j = i + delta if exact or delta < 0 else i + delta - 1
    return int(steps[min(max(j, 0), len(steps) - 1)])


def instance_transforms(body_poses: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched-mesh transforms of every body of the first E envs.

    body_poses: [N, B, 7] (x, y, z, qx, qy, qz, qw), N >= E.
    offsets: [E, 3] added to every body of env e (`env_grid_offsets`).
    Returns positions [B, E, 3] and wxyzs [B, E, 4], float32, C-contiguous (one row per body mesh).
    """
    e = len(offsets)
    poses = np.asarray(body_poses)[:e]
    positions = np.empty((poses.shape[1], e, 3), np.float32)
    np.add(poses[:, :, 0:3].transpose(1, 0, 2), offsets[None, :, :], out=positions)
    wxyzs = np.empty((poses.shape[1], e, 4), np.float32)
    t = poses.transpose(1, 0, 2)
    wxyzs[..., 0] = t[..., 6]
    wxyzs[..., 1:4] = t[..., 3:6]
    return positions, wxyzs


class Trails:
    """Every env's last `length` base positions, kept as the line segments between them
    ([length - 1, E, 2, 3] ring, one row written per step, so a frame never recomputes the rest).

    A step that goes backwards, or jumps further than the trail is long, starts the trails afresh
    (a seek); a segment longer than `max_jump` metres (an env reset teleporting its base) is
    drawn with zero length.
    """

    def __init__(self, length: int, num_envs: int, *, max_jump: float = 0.5) -> None:
        self.length = max(2, int(length))
        self.num_envs = int(num_envs)
        self.max_jump = float(max_jump)
        self._seg = np.zeros((self.length - 1, self.num_envs, 2, 3), np.float32)
        self._last = np.zeros((self.num_envs, 3), np.float32)
        self._count = 0  # points
        self._head = 0  # next segment row to write
        self._last_step: int | None = None

    def clear(self) -> None:
        self._count = 0
        self._head = 0
        self._last_step = None

    @property
    def count(self) -> int:
        """Points stored (at most `length`)."""
        return self._count

    def push(self, step: int, positions: np.ndarray) -> bool:
        """Add every env's base position [E, 3] at `step`; returns False for a repeated step (nothing added)."""
        last = self._last_step
        if last is not None:
            if step == last:
                return False
            if step < last or step - last > self.length:
                self.clear()
        if self._count:
            row = self._seg[self._head]
            row[:, 0] = self._last
            row[:, 1] = positions
            d = row[:, 1] - row[:, 0]
            jump = np.einsum("ij,ij->i", d, d) > self.max_jump**2
            row[jump, 1] = row[jump, 0]
            self._head = (self._head + 1) % len(self._seg)
        self._last[:] = positions
        self._count = min(self._count + 1, self.length)
        self._last_step = step
        return True

    def segments(self) -> np.ndarray:
        """[(n - 1) * E, 2, 3] float32 line segments, oldest first (env-major within each time
        step), a new array; empty when n < 2."""
        n = self._count - 1
        if n < 1:
            return np.zeros((0, 2, 3), np.float32)
        if n < len(self._seg):
            return self._seg[:n].reshape(-1, 2, 3).copy()
        return np.concatenate([self._seg[self._head :], self._seg[: self._head]]).reshape(-1, 2, 3)


class PoseHistory:
    """The last `capacity` states of a live run: steps [H] and body poses [H, E, B, 7]."""

    def __init__(self, capacity: int, num_envs: int, num_bodies: int) -> None:
        self.capacity = max(1, int(capacity))
        self._steps = np.full(self.capacity, -1, np.int64)
        self._poses = np.zeros((self.capacity, num_envs, num_bodies, 7), np.float32)
        self._sim_times = np.zeros(self.capacity, np.float64)
        self._head = 0
        self._count = 0

    @property
    def shape(self) -> tuple[int, int]:
        """(E, B) of the poses kept."""
        return self._poses.shape[1], self._poses.shape[2]

    def __len__(self) -> int:
        return self._count

    def push(self, step: int, sim_time: float, poses: np.ndarray) -> None:
        """poses: [>= E, B, 7]; the first E envs are kept."""
        e = self._poses.shape[1]
        self._steps[self._head] = step
        self._sim_times[self._head] = sim_time
        self._poses[self._head] = poses[:e]
        self._head = (self._head + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def span(self) -> tuple[int, int] | None:
        """(oldest, newest) step kept, or None when empty."""
        if not self._count:
            return None
        valid = self._steps[self._steps >= 0] if self._count < self.capacity else self._steps
        return int(valid.min()), int(valid.max())

    def at(self, step: int, *, after: bool = False) -> tuple[int, float, np.ndarray] | None:
        """(step, sim_time, poses [E, B, 7]) of the newest kept state at or before `step` (`after`:
        the oldest at or after it); the nearest end of what is kept when there is none that way;
        None when empty."""
        if not self._count:
            return None
        steps = self._steps
        ok = steps >= 0
        if after:
            side = ok & (steps >= step)
            pick = np.argmin if side.any() else np.argmax
        else:
            side = ok & (steps <= step)
            pick = np.argmax if side.any() else np.argmin
        cand = side if side.any() else ok
        i = int(np.flatnonzero(cand)[pick(steps[cand])])
        return int(steps[i]), float(self._sim_times[i]), self._poses[i]


class RewardSeries:
    """Total reward and every term per step: values [T, K + 1, C] for env columns `env_ids`
    (row 0 of the middle axis is the total), and the means over all envs [T, K + 1].

    Filled either at once from a replay's Timeline (`set_timeline`) or step by step from the
    RewardTerms of a live run (`append`, bounded by `capacity`: the oldest half is dropped
    when it is full). A replay's Timeline also gives every env's total (`totals` [T, N]): an env
    that is not a column then has its total, with NaN terms.
    """

    def __init__(self, term_names: Sequence[str] = (), env_ids: Sequence[int] = (), *, capacity: int = 10_000) -> None:
        self.capacity = max(2, int(capacity))
        self.term_names = list(term_names)
        self.env_ids = np.asarray(env_ids, np.int64)
        self._col = {int(e): c for c, e in enumerate(self.env_ids)}
        self._n = 0
        k = len(self.term_names) + 1
        self._steps = np.zeros(0, np.int64)
        self._values = np.zeros((0, k, len(self.env_ids)), np.float32)
        self._means = np.zeros((0, k), np.float32)
        self._totals = np.zeros((0, 0), np.float32)  # [T, N] every env's total (replay)
        self.fixed = False  # True once a whole-run Timeline was loaded: no more appends

    @property
    def names(self) -> list[str]:
        """["total", *term_names]."""
        return ["total", *self.term_names]

    def __len__(self) -> int:
        return self._n

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self._n]

    def has_env(self, env: int) -> bool:
        """`env` has its own values here (every term, or its total only: `has_terms`)."""
        return int(env) in self._col or 0 <= int(env) < self._totals.shape[1]

    def has_terms(self, env: int) -> bool:
        return int(env) in self._col

    def _env_rows(self, rows: np.ndarray | slice, env: int) -> np.ndarray | None:
        """[K + 1, len(rows)] of `env` at those rows, or None when it has no values of its own."""
        c = self._col.get(int(env))
        if c is not None:
            return self._values[rows, :, c].T
        if 0 <= int(env) < self._totals.shape[1]:
            total = self._totals[rows, int(env)]
            out = np.full((len(self.names), total.size), np.nan, np.float32)
            out[0] = total
            return out
        return None

    def set_timeline(
        self,
        steps: np.ndarray,
        term_names: Sequence[str],
        env_ids: np.ndarray,
        total: np.ndarray,
        terms: np.ndarray,
        total_mean: np.ndarray,
        terms_mean: np.ndarray,
        totals: np.ndarray | None = None,
    ) -> None:
        """Load a whole run (the flat arrays of a `rollout_msgs/Timeline`; `totals`: its total_all)."""
        t, c, k = len(steps), len(env_ids), len(term_names)
        self.term_names = list(term_names)
        self.env_ids = np.asarray(env_ids, np.int64)
        self._col = {int(e): i for i, e in enumerate(self.env_ids)}
        values = np.empty((t, k + 1, c), np.float32)
        values[:, 0, :] = np.asarray(total, np.float32).reshape(t, c)
        values[:, 1:, :] = np.asarray(terms, np.float32).reshape(k, t, c).transpose(1, 0, 2)
        means = np.empty((t, k + 1), np.float32)
        means[:, 0] = np.asarray(total_mean, np.float32).reshape(t) if len(total_mean) == t else values[:, 0].mean(-1)
        if len(terms_mean) == k * t:
            means[:, 1:] = np.asarray(terms_mean, np.float32).reshape(k, t).T
        else:
            means[:, 1:] = values[:, 1:].mean(-1) if c else 0.0
        order = np.argsort(np.asarray(steps, np.int64), kind="stable")
        self._steps = np.asarray(steps, np.int64)[order]
        self._values = values[order]
        self._means = means[order]
        self._totals = np.zeros((t, 0), np.float32) if totals is None else np.asarray(totals, np.float32).reshape(t, -1)[order]
        self._n = t
        self.fixed = True

    def append(self, step: int, total: np.ndarray, terms: np.ndarray) -> None:
        """One live step: total [N], terms [K, N] (N >= max(env_ids) + 1). A step not after the
        last one kept replaces nothing and is ignored."""
        if self.fixed:
            return
        if self._n and step <= self._steps[self._n - 1]:
            return
        if self._n == len(self._steps):
            self._grow()
        i = self._n
        cols = self.env_ids
        self._steps[i] = step
        self._values[i, 0] = total[cols]
        self._values[i, 1:] = terms[:, cols]
        self._means[i, 0] = total.mean() if total.size else 0.0
        self._means[i, 1:] = terms.mean(axis=1) if terms.size else 0.0
        self._n += 1

    def _grow(self) -> None:
        n = self._n
        if n >= self.capacity:  # drop the oldest half
            keep = n // 2
            self._steps[:keep] = self._steps[n - keep : n]
            self._values[:keep] = self._values[n - keep : n]
            self._means[:keep] = self._means[n - keep : n]
            self._n = keep
            return
        size = min(self.capacity, max(64, 2 * len(self._steps)))
        k, c = self._values.shape[1:]
        for name, shape in (("_steps", (size,)), ("_values", (size, k, c)), ("_means", (size, k))):
            old = getattr(self, name)
            new = np.zeros(shape, old.dtype)
            new[:n] = old[:n]
            setattr(self, name, new)

    def index(self, step: int) -> int | None:
        """Row of `step` exactly, or None."""
        steps = self.steps
        i = int(np.searchsorted(steps, step))
        return i if i < len(steps) and steps[i] == step else None

    def at(self, step: int, env: int) -> np.ndarray | None:
        """[K + 1] float32 total and terms of `env` at `step` (the env mean when the env is
        not one of the columns); None when the step is not kept."""
        i = self.index(step)
        if i is None:
            return None
        own = self._env_rows(slice(i, i + 1), env)
        return self._means[i] if own is None else own[:, 0]

    def values_at(self, steps: np.ndarray, env: int, names: Sequence[str]) -> np.ndarray:
        """[len(names), len(steps)] float64 of `env` (or the mean) at `steps`, by series name
        ("total", term names); NaN for a step or a name this series does not have."""
        out = np.full((len(names), len(steps)), np.nan)
        have = self.steps
        i = np.minimum(np.searchsorted(have, steps), max(len(have) - 1, 0))
        ok = (np.flatnonzero(have[i] == steps) if len(have) else np.zeros(0, np.int64))
        own = self._env_rows(i[ok], env) if ok.size else None
        rows = {n: k for k, n in enumerate(self.names)}
        for j, name in enumerate(names):
            k = rows.get(name)
            if k is not None and ok.size:
                out[j, ok] = self._means[i[ok], k] if own is None else own[k]
        return out

    def total_between(self, env: int, first: int, last: int) -> float | None:
        """Sum of `env`'s total reward over steps first..last (inclusive); None when the env is not
        a column or those steps are not all kept."""
        steps = self.steps
        lo, hi = int(np.searchsorted(steps, first, "left")), int(np.searchsorted(steps, last, "right"))
        own = self._env_rows(slice(lo, hi), env)
        if own is None or hi - lo != last - first + 1:
            return None
        return float(own[0].sum(dtype=np.float64))

    def series(
        self, env: int, *, window: tuple[int, int] | None = None, points: int = 500
    ) -> tuple[np.ndarray, np.ndarray]:
        """(steps [P], values [K + 1, P]) of `env` (or the mean), within `window` = (first, last) step
        when given, sampled down to at most `points` rows evenly over the steps."""
        steps = self.steps
        lo, hi = 0, len(steps)
        if window is not None:
            lo = int(np.searchsorted(steps, window[0], "left"))
            hi = int(np.searchsorted(steps, window[1], "right"))
        rows = np.arange(lo, hi)
        if len(rows) > points:
            rows = rows[np.unique(np.linspace(0, len(rows) - 1, points).round().astype(np.int64))]
        own = self._env_rows(rows, env)
        return steps[rows], self._means[rows].T if own is None else own


@dataclass(frozen=True)
class EpisodeEnd:
    """One finished episode of one env, as the episode panel shows it."""

    step: int
    """Step at which it ended."""
    length: int
    """Control steps in it."""
    ret: float | None
    """Undiscounted return (None: not known, e.g. not played yet and not in the series)."""
    terminated: bool | None
    """True: terminated, False: truncated, None: not known."""


class EpisodeLog:
    """Episode ends (step, env); an episode of env e starts on the step after each of its ends.

    The details of an end (return, length, terminated) are kept as EpisodeEvents report them, so
    the panel can show the last episode that ended at or before any step, not only the newest.
    """

    def __init__(self) -> None:
        self._steps = np.zeros(0, np.int64)
        self._envs = np.zeros(0, np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._details: dict[tuple[int, int], tuple[float, int, bool]] = {}

    def clear(self) -> None:
        self.__init__()

    def set(self, steps: np.ndarray, envs: np.ndarray) -> None:
        """Replace the ends with those of a whole run (Timeline.episode_steps / episode_envs);
        details already reported are kept."""
        self._steps = np.asarray(steps, np.int64).copy()
        self._envs = np.asarray(envs, np.int64).copy()
        self._pending = []

    def add(self, step: int, env_ids: np.ndarray) -> None:
        """Ends reported at one step (EpisodeEvents)."""
        env_ids = np.asarray(env_ids, np.int64)
        self._pending.append((np.full(env_ids.size, step, np.int64), env_ids))

    def add_details(
        self, step: int, env_ids: np.ndarray, returns: np.ndarray, lengths: np.ndarray, terminated: np.ndarray
    ) -> None:
        """Return, length and terminated of the episodes that ended at `step` (EpisodeEvents)."""
        for k, e in enumerate(np.asarray(env_ids, np.int64).tolist()):
            self._details[(int(step), e)] = (float(returns[k]), int(lengths[k]), bool(terminated[k]))

    def last_end(self, env: int, step: int, first_step: int = 0) -> EpisodeEnd | None:
        """The last episode of `env` that ended at or before `step`; None when none has."""
        ends = self.ends(env)
        i = int(np.searchsorted(ends, step, "right")) - 1
        if i < 0:
            return None
        end = int(ends[i])
        start = int(ends[i - 1]) + 1 if i > 0 else first_step
        got = self._details.get((end, int(env)))
        if got is not None:
            return EpisodeEnd(end, got[1], got[0], got[2])
        return EpisodeEnd(end, end - start + 1, None, None)

    def _flush(self) -> None:
        if self._pending:
            self._steps = np.concatenate([self._steps, *(p[0] for p in self._pending)])
            self._envs = np.concatenate([self._envs, *(p[1] for p in self._pending)])
            self._pending = []

    def ends(self, env: int) -> np.ndarray:
        """Sorted unique steps at which episodes of `env` ended."""
        self._flush()
        return np.unique(self._steps[self._envs == env])

    def neighbour_start(self, env: int, current: int, direction: int, first_step: int) -> int | None:
        """Start step of the next (direction > 0) or previous (< 0) episode of `env` relative to
        `current`; the run's first step counts as a start. None when there is none that way."""
        starts = np.unique(np.concatenate([[first_step], self.ends(env) + 1]))
        if direction > 0:
            later = starts[starts > current]
            return int(later[0]) if later.size else None
        earlier = starts[starts < current]
        return int(earlier[-1]) if earlier.size else None


def reward_values(msg: Any, names: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A rollout_msgs/RewardTerms as arrays: total [N], the terms `names` [K, N] in that order (NaN
    for one it lacks; None: the message's own) and both stacked [K + 1, N]."""
    total = np.asarray(msg.total, np.float32)
    names = tuple(t.name for t in msg.terms) if names is None else names
    by_name = {t.name: np.asarray(t.value, np.float32) for t in msg.terms}
    n = total.size
    terms = (
        np.stack([by_name.get(k, np.full(n, np.nan, np.float32)) for k in names])
        if names
        else np.zeros((0, n), np.float32)
    )
    values = np.concatenate([total[None], terms]) if terms.size or n else np.zeros((1, 0), np.float32)
    return total, terms, values


def timeline_totals(msg: Any, num_steps: int) -> np.ndarray | None:
    """A Timeline's every-env totals [S, N], or None when it has none."""
    n = int(getattr(msg, "num_envs", 0) or 0)
    total = np.asarray(getattr(msg, "total_all", ()), np.float32)
    return total.reshape(num_steps, n) if n and total.size == num_steps * n else None
