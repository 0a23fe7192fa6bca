"""What the playback controls do: live, on the page's own history, or on a replay, through the graph.

    playback = LivePlayback(viewer, history=600)   # until a Timeline or PlaybackStatus is seen
    playback = ReplayPlayback(viewer)              # from then on (chosen once)
    requests = playback.seek(40)                   # lock held; the viewer fires `requests` after it
    playback.set_paused(True); playback.step_by(-1); playback.seek_episode(env, +1)

Live, the page keeps the last `history` states of the drawn envs: pausing freezes this page's view
only (the sim goes on) and scrubbing, stepping and episode jumps draw kept states. On a replay the
same controls ask the replay node (`ViewerCallbacks`): they return the calls to make, which the
viewer makes once its lock is released (they are service calls). Both act on the viewer that holds
them, with its lock held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rollout.viewer.buffers import PoseHistory, RewardSeries

if TYPE_CHECKING:
    from rollout.viewer.scene import RobotScene
    from rollout.viewer.viewer import Viewer

Request = tuple[Callable[..., Any] | None, tuple[Any, ...]]
"""A callback to call with these arguments (None: the page has no such control)."""


class LivePlayback:
    """A live run: the controls act on the last `history` states kept for the drawn envs."""

    mode = "live"
    source_name = "sim node"
    policy_switch = True  # the live policy switch may be shown

    def __init__(self, viewer: Viewer, *, history: int) -> None:
        self._v = viewer
        self.history_length = int(history)
        self.history: PoseHistory | None = None
        self.latest: int | None = None  # the newest step received (drawn or not)

    # -- the controls

    def seek(self, step: int) -> Sequence[Request]:
        """Draw the kept state nearest `step`, pausing the view."""
        self._show(step)
        return ()

    def set_paused(self, paused: bool) -> Sequence[Request]:
        """Freeze (True) or resume (False) this page's view; the sim goes on."""
        v = self._v
        v._set_paused_ui(paused)
        v._update_info()
        if not paused and self.history is not None and self.latest is not None:
            self._show(self.latest, freeze=False)
        return ()

    def step_by(self, delta: int) -> Sequence[Request]:
        if self._v.shown_step is not None:
            self._show(self._v.shown_step + delta, forward=delta > 0)
        return ()

    def seek_episode(self, env: int, direction: int) -> Sequence[Request]:
        v = self._v
        if v.shown_step is None or v._first_step is None:
            return ()
        target = v.episodes.neighbour_start(env, v.shown_step, direction, v._first_step)
        if target is not None:
            self._show(target, forward=True)
        return ()

    def button_label(self, paused: bool) -> str:
        return "Resume live view" if paused else "Pause view"  # this page's view only: the sim goes on

    def paused_line(self) -> str | None:
        """The info line while the view is paused."""
        v = self._v
        if not v.paused:
            return None
        return f"*view paused at step {v.shown_step}; the sim keeps running (step {self.latest})*"

    # -- what arrives

    def on_state(self, step: int, sim_time: float, drawn: np.ndarray) -> bool:
        """Keep the state; True when it is to be drawn now (the view is not paused)."""
        v = self._v
        if self.latest is not None and step < self.latest:  # the run started over (same robot, new sim)
            self.on_scene_built(v.scene)
            self.latest = None
            v._run_restarted()
        if self.history is not None:
            self.history.push(step, sim_time, drawn)
        self.latest = step
        lo = self.history.span()[0] if self.history is not None and len(self.history) else step
        v.controls.set_step_range(lo, step)
        return not v.paused

    def on_terms(self, step: int, total: np.ndarray, terms: np.ndarray) -> None:
        """A live run's series is built from its RewardTerms (of the envs it covers)."""
        series = self._v.series
        if len(series.env_ids) and total.size > series.env_ids.max():
            series.append(step, total, terms)

    def on_episodes(self, step: int, env_ids: np.ndarray) -> None:
        self._v.episodes.add(step, env_ids)

    def on_envs_drawn(self, scene: RobotScene) -> None:
        """Another set of envs is drawn: the kept states and series start again for them."""
        v = self._v
        self.history = PoseHistory(self.history_length, scene.num_drawn, max(scene.num_bodies, 1))
        v.series = RewardSeries(v.robot.term_names if v.robot else (), scene.env_ids)

    def on_scene_built(self, scene: RobotScene) -> None:
        self.on_envs_drawn(scene)
        self._v.episodes.clear()
        self._v._first_step = None

    def lost(self) -> tuple[str, str, str]:
        """(the info line, notice title, notice body) once the sim node is gone."""
        step = self.latest
        kept = ""
        if self.history is not None and (span := self.history.span()) is not None:
            kept = f" Scrub steps {span[0]}-{span[1]}, kept here."
        body = f"The {self.source_name} stopped at step {step}; the page stays open.{kept}"
        return f"recording ended at step {step}", "Recording ended", body

    def _show(self, step: int, *, forward: bool = False, freeze: bool = True) -> None:
        """Draw the kept state at `step` (the first kept one after it when `forward`)."""
        span = self.history.span() if self.history is not None else None
        if span is None:
            return
        v = self._v
        if freeze and not v.paused:
            v._set_paused_ui(True)
        got = self.history.at(min(max(step, span[0]), span[1]), after=forward)  # type: ignore[union-attr]
        if got is not None:
            v._draw(got[0], got[1], got[2])


class ReplayPlayback:
    """A replay: the controls ask the replay node, which reports back (PlaybackStatus, States)."""

    mode = "replay"
    source_name = "replay node"
    policy_switch = False

    def __init__(self, viewer: Viewer) -> None:
        self._v = viewer
        self.last_step: int | None = None
        self.finished = False  # the player reported it played the last message

    # -- the controls

    def seek(self, step: int) -> Sequence[Request]:
        return [(self._v.callbacks.seek_step, (step,))]

    def set_paused(self, paused: bool) -> Sequence[Request]:
        """Play at the end starts over, as a media player does."""
        v = self._v
        at_end = self.finished or (v.shown_step is not None and v.shown_step == self.last_step)
        restart = not paused and at_end and v._first_step is not None
        self.finished = self.finished and paused
        v._set_paused_ui(paused)
        first: list[Request] = [(v.callbacks.seek_step, (v._first_step,))] if restart else []
        return [*first, (v.callbacks.set_paused, (paused,))]

    def step_by(self, delta: int) -> Sequence[Request]:
        self._v._set_paused_ui(True)
        return [(self._v.callbacks.step, (delta,))]

    def seek_episode(self, env: int, direction: int) -> Sequence[Request]:
        return [(self._v.callbacks.seek_episode, (env, direction))]

    def button_label(self, paused: bool) -> str:
        return "Play" if paused else "Pause"

    def paused_line(self) -> str | None:
        return None

    def on_status(self, msg: Any) -> bool:
        """A `rollout_msgs/PlaybackStatus`: paused, range, step, loop and rate as the player reports
        them; True when it has just played the last message."""
        v = self._v
        finished = bool(msg.finished)
        ended, self.finished = finished and not self.finished, finished
        v._set_paused_ui(bool(msg.paused) or finished)
        lo, hi = int(msg.first_step), int(msg.last_step)
        if hi >= lo:
            v._first_step, self.last_step = lo, hi
            v.controls.set_step_range(lo, hi)
        v.controls.set_step(int(msg.step))
        v.controls.show_replay(loop=bool(msg.loop), rate=float(msg.rate))
        return ended

    # -- what arrives: the replay node sends the whole run's series (Timeline) and seeks itself

    def on_state(self, step: int, sim_time: float, drawn: np.ndarray) -> bool:
        return True

    def on_terms(self, step: int, total: np.ndarray, terms: np.ndarray) -> None:
        pass

    def on_episodes(self, step: int, env_ids: np.ndarray) -> None:
        pass

    def on_envs_drawn(self, scene: RobotScene) -> None:
        pass

    def on_scene_built(self, scene: RobotScene) -> None:
        pass

    def lost(self) -> tuple[str, str, str]:
        step = self._v.shown_step
        body = f"The {self.source_name} stopped; the page shows step {step} and stays open."
        return f"the {self.source_name} is gone: the controls do nothing now", "Replay node lost", body
