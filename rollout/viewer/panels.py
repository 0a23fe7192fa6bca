"""The viewer's reward panel: a table of every term of the selected env at the drawn step, the
last episode that ended by then, and a uPlot of the terms over the run with the playhead marked.

    panel = RewardPanel(server.gui, plot_points=500, plot_window=1000)   # inside a folder
    panel.show(RewardView(step=..., sim_time=..., env=..., series=..., episodes=..., ...))
    panel.invalidate()                                                  # redraw the plot next time

It only reads what it is given (`RewardSeries`, `EpisodeLog`); the Viewer decides when to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rollout.viewer.buffers import EpisodeLog, RewardSeries

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# NaN except at the drawn step; not scanned for the y range (a NaN would poison it). Its label is
# constant: series options re-sent with every frame left the page's chart without an x scale.
_PLAYHEAD = {
    "label": "playhead",
    "stroke": "#000000",
    "width": 0,
    "auto": False,
    "points": {"show": True, "size": 9, "fill": "#000000"},
}


@dataclass(frozen=True)
class RewardView:
    """What the panel shows: one env at one step."""

    step: int
    sim_time: float
    env: int
    series: RewardSeries
    episodes: EpisodeLog
    first_step: int
    term_names: Sequence[str] = ()
    """Used while the series is still empty."""
    latest: tuple[int, np.ndarray] | None = None
    """(step, [K + 1, N]) of the newest RewardTerms, for a step the series does not keep."""
    compare: RewardSeries | None = None
    """Compare's B: drawn dashed next to each line of A."""


class RewardPanel:
    """The markdown table and the uPlot of the reward terms (build it inside a GUI folder)."""

    def __init__(self, gui: Any, *, plot_points: int = 500, plot_window: int = 1000) -> None:
        self.plot_points = int(plot_points)
        self.plot_window = int(plot_window)
        self.markdown = gui.add_markdown("")
        self.plot = gui.add_uplot(
            data=(np.zeros(2), np.zeros(2)),
            series=({"label": "step"}, {"label": "total", "stroke": PALETTE[0], "width": 2}),
            scales={"x": {"time": False}},
            aspect=1.4,
        )
        self._key: tuple | None = None

    def invalidate(self) -> None:
        """Send the plot again on the next `show` (the series or the env changed)."""
        self._key = None

    def show(self, view: RewardView) -> None:
        self.markdown.content = table(view)
        self._show_plot(view.series, view.step, view.env, view.compare)

    def _show_plot(self, series: RewardSeries, step: int, env: int, compare: RewardSeries | None = None) -> None:
        if not len(series):
            return
        window = None
        if not series.fixed:  # live: the newest plot_window steps (or around a step scrubbed to)
            hi = series.steps[-1]
            lo = hi - self.plot_window
            if step < lo:
                lo, hi = step - self.plot_window // 2, step + self.plot_window // 2
            window = (int(lo), int(hi))
        xs, vals = series.series(env, window=window, points=self.plot_points)
        if len(xs) == 0:
            return
        i = int(np.clip(np.searchsorted(xs, step), 0, len(xs) - 1))
        if i > 0 and abs(xs[i - 1] - step) < abs(xs[i] - step):
            i -= 1
        key = (env, len(series), int(xs[0]), int(xs[-1]), i, series.fixed, id(compare))
        if key == self._key:
            return
        self._key = key
        marker = np.full(len(xs), np.nan)
        marker[i] = vals[0, i]
        lines = [
            {"label": n, "stroke": PALETTE[k % len(PALETTE)], "width": 2 if k == 0 else 1}
            for k, n in enumerate(series.names)
        ]
        columns = [*vals.astype(np.float64)]
        if compare is not None:  # B at A's steps, dashed in A's colours
            lines += [
                {"label": f"B {n}", "stroke": PALETTE[k % len(PALETTE)], "width": 2 if k == 0 else 1, "dash": [6, 4]}
                for k, n in enumerate(series.names)
            ]
            columns += [*compare.values_at(xs, env, series.names)]
        options = ({"label": "step"}, *lines, _PLAYHEAD)
        plot = self.plot
        if tuple(plot.series) != options:  # only when they change: see _PLAYHEAD
            plot.series = options  # type: ignore[assignment]
        plot.data = (xs.astype(np.float64), *columns, marker)
        title = f"reward terms · {env_words(series, env)}"
        if plot.title != title:
            plot.title = title


def table(view: RewardView) -> str:
    """The panel's markdown: step, time, every term of the env, and its last finished episode."""
    step, e, series = view.step, view.env, view.series
    names = series.names if len(series) else ["total", *view.term_names]
    values = series.at(step, e)
    label = f"env {e}" if values is None else env_words(series, e)
    if values is None and view.latest is not None and view.latest[0] == step:
        v = view.latest[1]
        values = v[:, e] if e < v.shape[1] else None
        label = f"env {e}"
    lines = [f"**step {step}** · t = {view.sim_time:.3f} s · {label}", "", "| term | value |", "|---|---:|"]
    if values is not None:
        for k, name in enumerate(names):
            v = float(values[k]) if k < len(values) else float("nan")
            lines.append(f"| {'**total**' if k == 0 else name} | {v:+.4f} |")
    else:
        lines.append("| *(no reward terms at this step)* | |")
    last = view.episodes.last_end(e, step, view.first_step)
    if last is not None:
        ret = last.ret if last.ret is not None else series.total_between(e, last.step - last.length + 1, last.step)
        how = {True: "terminated", False: "truncated", None: "ended"}[last.terminated]
        got = f"return {ret:.2f}, " if ret is not None else ""
        lines += ["", f"last episode: {got}{last.length} steps, {how} at step {last.step}"]
    return "\n".join(lines)


def env_words(series: Any, env: int) -> str:
    """Whose values the panel shows: "env 3", "env 3000 (total; ...)" (a replay env outside the Timeline's
    env_ids: its total only) or
    "mean over envs"."""
    if not series.has_env(env):
        return "mean over envs"
    return f"env {env}" if series.has_terms(env) else f"env {env} (total; terms only for the timeline's env_ids)"
