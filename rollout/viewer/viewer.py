"""The web viewer: a viser server that draws decoded rollout messages and reports what the user does.

    viewer = Viewer(port=8080, callbacks=ViewerCallbacks(seek_step=..., set_paused=...))
    viewer.on_robot(robot)            # rollout_msgs/RobotDescription (again after a seek: no-op if unchanged)
    viewer.on_state(state)            # rollout_msgs/State, draws it
    viewer.on_reward_terms(terms)     # rollout_msgs/RewardTerms
    viewer.on_timeline(timeline)      # rollout_msgs/Timeline (replay only; switches to replay mode)
    viewer.on_status(status)          # rollout_msgs/PlaybackStatus (replay only)
    viewer.on_episodes(events)        # rollout_msgs/EpisodeEvents
    viewer.source_lost()              # the feeding node is gone: the page stays and says so; its name
    viewer.notify(title, body)        # a notice on every open page
    viewer.neighbour_step(+1)         # the recorded step after the drawn one (for the step buttons)
    viewer.seek(40); viewer.set_paused(False); viewer.step_by(-1); viewer.seek_episode(+1)   # the controls
    viewer.select_env(3); viewer.show_moment(m)   # Find: `m` from viewer.find.moments
    viewer.on_compare_robot(b_robot); viewer.on_compare_state(b_state); viewer.on_compare_timeline(b_tl)  # A/B

No middleware here: `nodes/viser_bridge.py` feeds it from topics and turns its callbacks into
service calls. Live (no Timeline or PlaybackStatus seen), the timeline slider grows with the steps
seen and pausing, scrubbing and stepping act on the viewer's own history of recent states; on a
replay they go to the replay node through the callbacks (`playback.LivePlayback`, `ReplayPlayback`:
chosen once, when the first Timeline or PlaybackStatus says a replay feeds the page).

Parts, each in its own module: the viser server (`server`), the 3D scene (`scene.RobotScene`,
`viewer.scene`: one batched mesh per body, one instance per env; clicking a robot selects its env),
the camera (`camera.PageCamera`), the GUI (`controls.Controls`: its widgets are also `viewer.step_slider`
etc.), the reward table and plot (`panels.RewardPanel`), the Find panel (`find.FindPanel` over
`moments.find_moments`), Compare's B (`comparison.Comparison`: a ghost, B's series, the summary),
live versus replay (`playback`). Cross-origin pages are refused by `rollout.viewer.origin`.
Thread-safe: the bridge draws from one thread while viser runs GUI callbacks on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rollout.cameras import CameraPose, parse_preset
from rollout.errors import ParameterError
from rollout.viewer.buffers import EpisodeLog, RewardSeries, neighbour_step, reward_values, timeline_totals
from rollout.viewer.camera import Framing, PageCamera
from rollout.viewer.comparison import Comparison
from rollout.viewer.controls import WIDGETS, Controls, ViewerCallbacks, fire
from rollout.viewer.moments import Moment, RunSeries
from rollout.viewer.panels import RewardView
from rollout.viewer.playback import LivePlayback, ReplayPlayback, Request
from rollout.viewer.scene import RobotInfo, RobotScene, robot_info, state_misfit, state_poses
from rollout.viewer.server import check_port as check_port  # re-exported: rollout.viewer.viewer.check_port
from rollout.viewer.server import notify_pages, start_server, stop_quietly

log = logging.getLogger(__name__)


class Viewer:
    """A viser web page showing a rollout: robots of many envs, timeline, camera presets, reward terms.

    Args:
        host, port: where to serve the page (port 0: any free port, see `port`).
        max_envs: draw at most this many envs (the first ones, or of `env_ids`).
        env_ids: the envs to draw (default the first `max_envs`); selecting another env, in the
            Env box, by a Find moment or a neighbour's click, draws it in place of one of them.
        trail_length: base positions kept per env for the trails (0: no trails).
        history: states kept for pausing and scrubbing a live run.
        plot_points: at most this many points per series in the reward plot.
        plot_window: steps shown in the reward plot of a live run.
        camera: the preset applied when the first state arrives.
        callbacks: what the controls call (`ViewerCallbacks`); none: a page that only looks.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        max_envs: int = 64,
        trail_length: int = 100,
        history: int = 600,
        plot_points: int = 500,
        plot_window: int = 1000,
        camera: str = "side",
        title: str = "rollout",
        callbacks: ViewerCallbacks | None = None,
        env_ids: Sequence[int] = (),
    ) -> None:
        if max_envs < 1:
            raise ParameterError(f"max_envs must be at least 1, got {max_envs}")
        initial_preset = parse_preset(camera)  # a wrong name fails before the server starts
        self.server = server = start_server(host, port, title)
        self.host = host
        self.port = server.get_port()
        self.max_envs = int(max_envs)
        self.draw_env_ids = tuple(int(e) for e in env_ids)
        self.trail_length = int(trail_length)
        self.plot_points = int(plot_points)
        self.plot_window = int(plot_window)
        self.callbacks = callbacks or ViewerCallbacks()
        self._page_ready_sent = False
        self._lock = threading.RLock()
        self._closed = False

        # what we know
        self.robot: RobotInfo | None = None
        self._robot_key: tuple | None = None
        # live until a Timeline or PlaybackStatus is seen: what the playback controls act on
        self.playback: LivePlayback | ReplayPlayback = LivePlayback(self, history=history)
        self.paused = False  # replay: as last reported/requested; live: the view is frozen
        self.shown_step: int | None = None  # step of the drawn state
        self._shown_time = 0.0
        self._first_step: int | None = None
        self._pending_state: Any = None
        self._last_poses: np.ndarray | None = None  # [N, B, 7] of the drawn state, every env
        self._last_terms: tuple[int, np.ndarray] | None = None  # (step, [K + 1, N]) of the newest RewardTerms
        self._ended: str | None = None  # why nothing more will come (the source node is gone)
        self._info_at = 0.0
        self._misfit: str | None = None  # the last reason a State was skipped (logged once)
        self.notices: list[tuple[str, str]] = []  # (title, body) of every notice shown, newest last

        self.scene = RobotScene(server.scene, max_envs=self.max_envs, trail_length=self.trail_length)
        self.scene.on_env_click(self.select_env)  # a robot clicked in the page
        self._run: RunSeries | None = None  # a replay's whole run, for the Find panel
        self.series = RewardSeries()
        self.episodes = EpisodeLog()
        self.cameras = PageCamera(server, self._framing, initial=initial_preset)
        self._policy_available = True

        self.controls = Controls(
            server.gui, self, trails=self.trail_length > 0, plot_points=self.plot_points,
            plot_window=self.plot_window, policy_switch=self.callbacks.set_policy_enabled is not None,
        )  # fmt: skip
        self.compare = Comparison(server.scene, self.controls.compare_markdown, max_envs=self.max_envs)
        server.on_client_connect(self._on_client_connect)

    # ------------------------------------------------------------------ lifetime

    @property
    def url(self) -> str:
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def is_replay(self) -> bool:
        """A replay feeds the page (a Timeline or PlaybackStatus was seen); otherwise a live run."""
        return isinstance(self.playback, ReplayPlayback)

    replay = is_replay

    @property
    def has_drawn(self) -> bool:
        """A state has been drawn."""
        return self.shown_step is not None

    def neighbour_step(self, delta: int) -> int:
        """The recorded step `delta` places from the drawn one (clamped to the recording's ends)."""
        with self._lock:
            return neighbour_step(self.series.steps, self.shown_step or 0, int(delta))

    def close(self) -> None:
        """Stop the server (safe to call twice)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        stop_quietly(self.server)

    def __enter__(self) -> Viewer:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        """The page's widgets by name (`viewer.step_slider`, `viewer.play_button`, ...: `Controls`)."""
        controls = self.__dict__.get("controls")
        if controls is None or name not in WIDGETS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(controls, name)

    def _is_internal(self) -> bool:
        """The GUI value being set is the viewer's own, not a user's."""
        return self.controls.is_internal()

    # -- what the user looks at

    @property
    def selected_env(self) -> int:
        e = round(self.controls.env_number.value)
        return min(max(e, 0), max(self._num_envs - 1, 0))

    @property
    def _slot(self) -> int:
        """The scene slot of the selected env (0 while it is not drawn)."""
        slot = self.scene.slot_of(self.selected_env)
        return 0 if slot is None else slot

    # -- what the controls do: `playback` decides (live: the kept states; replay: the replay node)

    def seek(self, step: int) -> None:
        """Move the playhead to `step` (live: draw the kept state nearest it, pausing the view)."""
        with self._lock:
            requests = self.playback.seek(int(step))
        self._fire_all(requests)

    def set_paused(self, paused: bool) -> None:
        """Pause or play (live: freeze or resume this page's view; the sim goes on). Play at the
        end of a replay starts over, as a media player does."""
        with self._lock:
            requests = self.playback.set_paused(bool(paused))
        self._fire_all(requests)

    def step_by(self, delta: int) -> None:
        """One recorded step forward (+1) or back (-1), pausing."""
        with self._lock:
            requests = self.playback.step_by(int(delta))
        self._fire_all(requests)

    def seek_episode(self, direction: int) -> None:
        """To the start of the selected env's next (+1) or previous (-1) episode."""
        with self._lock:
            requests = self.playback.seek_episode(self.selected_env, int(direction))
        self._fire_all(requests)

    def _fire_all(self, requests: Sequence[Request]) -> None:
        for cb, args in requests:
            fire(cb, *args)

    def select_env(self, env: int) -> None:
        """Show env `env` (clamped to the run's) in the table, plot, label, Find and follow; an
        env that is not drawn is drawn in place of another (`RobotScene.show_env`)."""
        with self._lock:
            env = min(max(int(env), 0), max(self._num_envs - 1, 0))
            self.controls.set_env(env)
            if self.robot is not None and self.scene.slot_of(env) is None:
                self._draw_too(env)
            self.controls.rewards.invalidate()
            if self.scene.has_drawn:
                self.scene.label(env)
                self._update_rewards()
                if self.controls.follow_checkbox.value:
                    self.cameras.follow(force=True)
            if not self.controls.find.scope_all:
                self._update_find()

    def show_moment(self, moment: Moment) -> None:
        """Select the moment's env, point the view at it and move the playhead to its step."""
        with self._lock:
            self.select_env(moment.env)  # drawn now if it was not
            self.controls.follow()
            self.cameras.show(self.cameras.preset or "follow")
            self.controls.release_slider()  # the slider follows the seek
        self.seek(moment.step)

    def _update_find(self) -> None:
        """List the moments of the selected env (or of every env) in the Find panel."""
        with self._lock:
            if self._run is not None:
                self.controls.find.show_run(self._run, self.selected_env)

    def _following(self, on: bool) -> None:
        """The user ticked (or cleared) "Follow env": point the camera at the selected env."""
        with self._lock:
            if on:
                self.cameras.show(self.cameras.preset or "follow")

    def show_trails(self, on: bool) -> None:
        with self._lock:
            self.scene.show_trails(bool(on))

    def show_ghost(self, on: bool) -> None:
        """Compare: draw B's ghost (True) or hide it."""
        with self._lock:
            self.compare.show(bool(on))

    def _on_client_connect(self, client: Any) -> None:
        # a new page starts where the others look: move it as soon as it reports its camera
        def first_camera(camera: Any) -> None:
            with self._lock:
                ready = not self._page_ready_sent and self.scene.has_drawn
                self._page_ready_sent = self._page_ready_sent or ready
                self.cameras.greet(client)
            if ready:  # the page reports its camera once it renders: it has the scene
                fire(self.callbacks.page_ready)

        client.camera.on_update(first_camera)

    @property
    def policy_available(self) -> bool:
        """Whether the live policy switch can be used (the bridge sets it from the service's presence)."""
        return self._policy_available

    @policy_available.setter
    def policy_available(self, available: bool) -> None:
        with self._lock:
            self._policy_available = bool(available)
            shown = self.callbacks.set_policy_enabled is not None and self.playback.policy_switch
            self.controls.policy_folder.visible = shown and self._policy_available

    # -- notices

    def notify(self, title: str, body: str, *, color: str = "blue", seconds: float | None = 8.0) -> None:
        """Show a notice on every open page (and keep it in `notices`); `seconds` None: until closed."""
        with self._lock:
            self.notices.append((title, body))
            del self.notices[:-50]
        notify_pages(self.server, title, body, color=color, seconds=seconds)

    @property
    def source_name(self) -> str:
        """What feeds the view: "replay node" or "sim node"."""
        return self.playback.source_name

    def source_lost(self) -> str:
        """The node that fed the view is gone: the page stays, and says so; returns its name
        (`source_name`)."""
        what = self.source_name
        with self._lock:
            if self._ended is not None or self._closed:
                return what
            self._ended, title, body = self.playback.lost()
            self._update_info()
        self.notify(title, body, color="yellow", seconds=None)
        return what

    def source_back(self) -> None:
        """The source is there again (a new run or replay): clear the ended state."""
        with self._lock:
            if self._ended is None:
                return
            self._ended = None
            self._update_info()

    # -- GUI state set by the viewer

    def _set_paused_ui(self, paused: bool) -> None:
        self.paused = paused
        self.controls.show_paused(paused, self.playback.button_label(paused))

    def _enter_replay(self) -> ReplayPlayback:
        """What feeds the page is a replay: its controls go to the replay node from now on."""
        if isinstance(self.playback, ReplayPlayback):
            return self.playback
        self.playback = replay = ReplayPlayback(self)
        self.series = RewardSeries(self.robot.term_names if self.robot else (), np.arange(self.scene.num_drawn))
        self.episodes.clear()
        self.controls.enter_replay(self.callbacks)
        self._set_paused_ui(self.paused)
        self._update_info()
        return replay

    # ------------------------------------------------------------------ messages

    def on_robot(self, msg: Any) -> None:
        """A `rollout_msgs/RobotDescription`: builds the scene (again only when it changed)."""
        key = (
            msg.model,
            msg.model_format,
            tuple(msg.body_names),
            int(msg.num_envs),
            float(msg.env_spacing),
            tuple(msg.reward_term_names),
        )
        with self._lock:
            if key == self._robot_key:
                return
            self._robot_key = key
            self.robot = robot_info(msg)
            self._model = (str(msg.model), str(msg.model_format) or "mjcf")
            self._build_scene(self.robot.num_envs, self.robot.num_bodies)
            self._update_info()
            pending, self._pending_state = self._pending_state, None
        if pending is not None:
            self.on_state(pending)

    def on_state(self, msg: Any) -> None:
        """A `rollout_msgs/State`: draws it (live and paused: kept for scrubbing, not drawn)."""
        n, b = int(msg.num_envs), int(msg.num_bodies)
        reason = state_misfit(msg)
        if reason is not None:  # a malformed message is skipped, not fatal to the page
            if reason != self._misfit:
                log.warning("viewer: skipping the state of step %s: %s", int(msg.step), reason)
            self._misfit = reason
            return
        poses = state_poses(msg)
        step = int(msg.step)
        with self._lock:
            if self._closed:
                return
            if self.robot is None:
                self._pending_state = msg
                return
            if n != self._num_envs or b != self.scene.num_bodies:
                log.warning("viewer: a state of %d envs x %d bodies does not fit the robot; redrawing", n, b)
                self._build_scene(n, b, fallback=b != self.scene.num_bodies)
            self._last_poses = poses
            drawn = self.scene.drawn(poses)
            draw_now = self.playback.on_state(step, float(msg.sim_time), drawn)  # live: kept, maybe restarted
            if self._first_step is None:
                self._first_step = step
            if draw_now:
                self._draw(step, float(msg.sim_time), drawn)
            elif time.monotonic() - self._info_at > 0.5:  # "the sim keeps running (step N)"
                self._update_info()

    def _draw_too(self, env: int) -> None:
        """Draw env `env` in place of one of the drawn envs, now (lock held)."""
        slot = self.scene.show_env(env)
        if slot is None:
            return
        self.playback.on_envs_drawn(self.scene)  # live: the kept states were of the envs drawn until now
        self.compare.layout(self.scene.offsets, self.scene.env_ids)
        if self._last_poses is not None and self.shown_step is not None:
            self._draw(self.shown_step, self._shown_time, self.scene.drawn(self._last_poses))

    def _run_restarted(self) -> None:
        """Live: the run started over (a new sim with the same robot); the playback kept nothing."""
        self.controls.rewards.invalidate()
        self._ended = None
        if self.scene.trails is not None:
            self.scene.trails.clear()

    def on_reward_terms(self, msg: Any) -> None:
        """A `rollout_msgs/RewardTerms`: the table of the selected env, and the live plot."""
        step = int(msg.step)
        with self._lock:
            total, terms, values = reward_values(msg, self.robot.term_names if self.robot else None)
            self._last_terms = (step, values)
            self.playback.on_terms(step, total, terms)
            if self.shown_step == step:
                self._update_rewards()

    def on_timeline(self, msg: Any) -> None:
        """A `rollout_msgs/Timeline` (replay): the whole run's series, range and episode ends."""
        with self._lock:
            replay = self._enter_replay()
            steps = np.asarray(msg.steps, np.int64)
            self.series.set_timeline(
                steps, list(msg.term_names), np.asarray(msg.env_ids), np.asarray(msg.total), np.asarray(msg.terms),
                np.asarray(msg.total_mean), np.asarray(msg.terms_mean), timeline_totals(msg, steps.size),
            )  # fmt: skip
            self.episodes.set(np.asarray(msg.episode_steps), np.asarray(msg.episode_envs))
            self._run = RunSeries.from_timeline(msg)
            self._update_find()
            self.compare.show_summary(self._run, self._label_a())
            if steps.size:
                self._first_step, replay.last_step = int(steps.min()), int(steps.max())
                self.controls.set_step_range(self._first_step, replay.last_step)
            self.controls.rewards.invalidate()
            self._update_rewards()

    # -- Compare (A/B): B's topics of a replay with compare:=B

    def on_compare_robot(self, msg: Any) -> None:
        """B's `rollout_msgs/RobotDescription`: its ghost, drawn with its own model over A's envs."""
        with self._lock:
            if self.compare.on_robot(msg) and self.scene.num_drawn:
                self.compare.layout(self.scene.offsets, self.scene.env_ids)
                self.compare.show(bool(self.controls.ghost_checkbox.value))
            self.controls.ghost_checkbox.visible = True
            self.compare.show_summary(self._run, self._label_a())

    def on_compare_state(self, msg: Any) -> None:
        """B's `rollout_msgs/State` at A's step: moves the ghost."""
        if state_misfit(msg) is not None:
            return
        with self._lock, self.server.atomic():
            self.compare.on_state(msg)

    def on_compare_timeline(self, msg: Any) -> None:
        """B's `rollout_msgs/Timeline`: B in every reward plot, and the summary."""
        with self._lock:
            self.compare.on_timeline(msg)
            self.compare.show_summary(self._run, self._label_a())
            self.controls.rewards.invalidate()
            self._update_rewards()

    def _label_a(self) -> str:
        return self.robot.policy if self.robot and self.robot.policy else "A"

    def on_status(self, msg: Any) -> None:
        """A `rollout_msgs/PlaybackStatus` (replay): paused, speed, loop and range as the player reports them."""
        with self._lock:
            ended = self._enter_replay().on_status(msg)
        if ended:
            self.notify("Replay ended", f"Played to step {int(msg.step)}. Press Play to start over.")

    def on_episodes(self, msg: Any) -> None:
        """A `rollout_msgs/EpisodeEvents`: ends for previous/next episode (live) and the table."""
        step = int(msg.step)
        ids = np.asarray(msg.env_ids, np.int64)
        with self._lock:
            self.playback.on_episodes(step, ids)
            self.episodes.add_details(
                step, ids, np.asarray(msg.returns), np.asarray(msg.lengths), np.asarray(msg.terminated)
            )
            if self.selected_env in ids.tolist():
                self._update_rewards()

    # ------------------------------------------------------------------ scene

    @property
    def _num_envs(self) -> int:
        return self.robot.num_envs if self.robot else 0

    def _build_scene(self, num_envs: int, num_bodies: int, *, fallback: bool = False) -> None:
        assert self.robot is not None
        self.robot = self.scene.build(
            self.robot, self._model, num_envs, num_bodies, fallback=fallback, env_ids=self.draw_env_ids or None
        )
        self.playback.on_scene_built(self.scene)  # live: kept states, series and episodes start again
        self.compare.layout(self.scene.offsets, self.scene.env_ids)  # B's ghost over the envs drawn now
        self.controls.rewards.invalidate()
        self.cameras.pending = True
        self.controls.set_num_envs(num_envs)

    def _draw(self, step: int, sim_time: float, poses: np.ndarray) -> None:
        """Move every body of every drawn env to `poses` [>= E, B, 7] (lock held)."""
        scene = self.scene
        with self.server.atomic():
            moved = scene.has_drawn and scene.num_drawn > 0
            prev_base = scene.bases[self._slot].copy() if moved else None
            if scene.draw(step, poses) and self.controls.trails_checkbox.value:
                scene.show_trails(True)
            self.shown_step, self._shown_time = step, sim_time
            scene.label(self.selected_env)
            self.controls.set_step(step)
            self.cameras.drawn(prev_base)  # the preset waiting for a state, or following the env
            self._update_rewards()

    # ------------------------------------------------------------------ camera

    def apply_camera(self, preset: str) -> CameraPose | None:
        """Show the view `preset` ("Top", "Side", "Front", "Follow"; any case) on every page.

        "Follow" also turns on following the selected env. Returns the pose, or None before the
        first state (it is then applied when one arrives)."""
        name = parse_preset(preset)
        with self._lock:
            if name == "follow":
                self.controls.follow()
            return self.cameras.choose(name)

    @property
    def camera(self) -> CameraPose | None:
        """The view last applied to the pages."""
        return self.cameras.pose

    def _framing(self) -> Framing | None:
        """What the camera fits: the selected env's bodies and every drawn base (None: nothing drawn)."""
        sc = self.scene
        if not sc.has_drawn or sc.body_pos is None:
            return None
        e = self._slot
        return Framing(sc.body_pos[:, e], sc.mesh_radius, sc.bases, e, bool(self.controls.follow_checkbox.value))

    # ------------------------------------------------------------------ text and plot

    def _update_info(self) -> None:
        if self.robot is None:
            return
        self._info_at = time.monotonic()
        note = f"*{self._ended}; the page stays open*" if self._ended is not None else self.playback.paused_line()
        self.controls.show_info(self.robot, self.playback.mode, self.scene.num_drawn, note)

    def _update_rewards(self) -> None:
        """The reward panel of the selected env at the drawn step (lock held)."""
        if self.shown_step is None:
            return
        self.controls.rewards.show(
            RewardView(
                step=self.shown_step,
                sim_time=self._shown_time,
                env=self.selected_env,
                series=self.series,
                episodes=self.episodes,
                first_step=self._first_step or 0,
                term_names=self.robot.term_names if self.robot else (),
                latest=self._last_terms,
                compare=self.compare.series,
            )
        )

