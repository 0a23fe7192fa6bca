"""Compare (A/B): the summary of two runs side by side, from their whole-run series (no viser).

    a, b = RunSeries.from_timeline(tl_a), RunSeries.from_timeline(tl_b)
    envs = common_envs(a, b)
    text = summary_table(summarize(a, envs), summarize(b, envs), "A: ppo", "B: random")

The numbers, over the envs both runs have (`common_envs`):
- mean return, mean episode length: over the episodes that ended in the recording; an episode
  counts from the step after its env's previous end (or from the first recorded step);
- return per env: the total reward summed over the recording, averaged over the envs;
- per-term means: each term over every recorded step and env (NaN where a term is missing is
  left out).
They are the numbers `rollout.export` gives for the same bags (`read_rollout` arrays; see
tests/test_viewer_compare.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rollout.viewer.moments import RunSeries


@dataclass(frozen=True)
class RunSummary:
    episodes: int
    """Episodes that ended in the recording (in the envs summarized)."""
    mean_return: float
    """NaN when none ended."""
    mean_length: float
    """Control steps; NaN when none ended."""
    return_per_env: float
    term_means: dict[str, float]


def common_envs(a: RunSeries, b: RunSeries) -> np.ndarray:
    """The env ids both series cover, sorted."""
    return np.intersect1d(a.env_ids, b.env_ids)


def episode_table(s: RunSeries, envs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(returns [V] float64, lengths [V] int64) of the episodes of `envs` that ended in the recording."""
    cols = np.flatnonzero(np.isin(s.env_ids, envs))
    col_of = np.full(int(max(s.env_ids.max(initial=-1), s.end_envs.max(initial=-1))) + 1, -1)
    col_of[s.env_ids[cols]] = np.arange(cols.size)
    rows = np.searchsorted(s.steps, s.end_steps)
    known = (s.end_envs < col_of.size) & (rows < len(s.steps))
    known[known] &= s.steps[rows[known]] == s.end_steps[known]
    known[known] &= col_of[s.end_envs[known]] >= 0
    done = np.zeros((len(s.steps), cols.size), bool)
    done[rows[known], col_of[s.end_envs[known]]] = True
    t_count = len(s.steps)
    prev = np.where(done, np.arange(t_count)[:, None], -1)
    np.maximum.accumulate(prev, axis=0, out=prev)  # latest end at or before t
    prev = np.vstack([np.full((1, cols.size), -1), prev[:-1]])  # ... strictly before t
    csum = np.zeros((t_count + 1, cols.size), np.float64)
    np.cumsum(np.nan_to_num(s.total[:, cols].astype(np.float64)), axis=0, out=csum[1:])
    ts, cs = np.nonzero(done)
    starts = prev[ts, cs] + 1
    return csum[ts + 1, cs] - csum[starts, cs], (ts - starts + 1).astype(np.int64)


def summarize(s: RunSeries, envs: np.ndarray) -> RunSummary:
    """The summary of `s` over `envs` (env ids)."""
    cols = np.flatnonzero(np.isin(s.env_ids, envs))
    returns, lengths = episode_table(s, envs)
    total = s.total[:, cols].astype(np.float64)
    with np.errstate(invalid="ignore"):
        per_term = {
            name: float(np.nanmean(v[:, cols].astype(np.float64))) if np.isfinite(v[:, cols]).any() else float("nan")
            for name, v in zip(s.term_names, s.terms)
        }
    return RunSummary(
        episodes=int(returns.size),
        mean_return=float(returns.mean()) if returns.size else float("nan"),
        mean_length=float(lengths.mean()) if lengths.size else float("nan"),
        return_per_env=float(np.nansum(total, axis=0).mean()) if cols.size else float("nan"),
        term_means=per_term,
    )


def summary_table(a: RunSummary, b: RunSummary, label_a: str, label_b: str, *, envs: int) -> str:
    """Markdown: one row per number, columns A, B and B - A."""

    def cell(x: float) -> str:
        return "–" if not np.isfinite(x) else f"{x:.3f}"

    def diff(x: float, y: float) -> str:
        return "–" if not (np.isfinite(x) and np.isfinite(y)) else f"{y - x:+.3f}"

    rows = [
        ("mean return", a.mean_return, b.mean_return),
        ("mean episode length", a.mean_length, b.mean_length),
        ("return per env", a.return_per_env, b.return_per_env),
        *((f"mean {n}", a.term_means.get(n, np.nan), b.term_means.get(n, np.nan)) for n in _names(a, b)),
    ]
    lines = [
        f"**compare** over {envs} common envs · A: {label_a} ({a.episodes} episodes ended) · "
        f"B (ghost): {label_b} ({b.episodes} ended)",
        "",
        "| | A | B | B − A |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {cell(x)} | {cell(y)} | {diff(x, y)} |" for name, x, y in rows]
    return "\n".join(lines)


def _names(a: RunSummary, b: RunSummary) -> list[str]:
    return [*a.term_means, *(n for n in b.term_means if n not in a.term_means)]
