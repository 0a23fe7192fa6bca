"""The viewer's GUI: every widget of the page, and handlers that turn their events into Viewer calls.

    controls = Controls(server.gui, viewer, trails=True, policy_switch=False)
    controls.step_slider, controls.play_button, ...   # the widgets (also `viewer.step_slider`, ...)
    with controls.internal():                        # values the viewer sets: not user actions
        controls.env_number.value = 3
    controls.set_step_range(0, 99); controls.set_step(40); controls.show_paused(True, "Play")

Handlers only translate: the slider seeks, Play pauses, the Env box selects, Speed and Loop call the
replay node's callbacks. What each does is the Viewer's (and its playback's) business.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollout.cameras import CAMERA_PRESETS
from rollout.viewer.find import FindPanel
from rollout.viewer.panels import RewardPanel

if TYPE_CHECKING:
    from rollout.viewer.scene import RobotInfo
    from rollout.viewer.viewer import Viewer

log = logging.getLogger(__name__)

PRESET_LABELS = tuple(p.capitalize() for p in CAMERA_PRESETS)  # "Top", "Side", "Front", "Follow"
SPEED_MIN, SPEED_MAX = 0.1, 4.0

WIDGETS = frozenset(
    {
        "info_markdown", "compare_markdown", "step_slider", "play_button", "step_buttons", "episode_buttons",
        "speed_slider", "loop_checkbox", "env_number", "follow_checkbox", "camera_buttons", "trails_checkbox",
        "ghost_checkbox", "find", "policy_folder", "policy_checkbox", "rewards", "rewards_markdown", "rewards_plot",
    }
)  # fmt: skip
"""The names under which the Viewer hands out the widgets (`viewer.step_slider`)."""


@dataclass(frozen=True)
class ViewerCallbacks:
    """What the page's controls ask of the graph. Each is optional: a control without one only acts
    locally (live) or is disabled. They run on viser's threads (or the caller's, for programmatic
    GUI changes) and must return quickly: the bridge makes them asynchronous service calls."""

    seek_step: Callable[[int], Any] | None = None
    """Replay: move the playhead to this step."""
    set_paused: Callable[[bool], Any] | None = None
    """Replay: pause (True) or resume (False)."""
    set_rate: Callable[[float], Any] | None = None
    """Replay: playback speed, 0.1-4."""
    set_loop: Callable[[bool], Any] | None = None
    """Replay: start over at the end."""
    step: Callable[[int], Any] | None = None
    """Replay: one recorded step forward (+1) or back (-1), pausing."""
    seek_episode: Callable[[int, int], Any] | None = None
    """Replay: start of the next (+1) or previous (-1) episode of an env: (env, direction)."""
    set_policy_enabled: Callable[[bool], Any] | None = None
    """Live: switch the policy on or off (the switch is shown only when given)."""
    page_ready: Callable[[], Any] | None = None
    """The first page has connected and drawn the scene (called once)."""


def fire(cb: Callable[..., Any] | None, *args: Any) -> bool:
    """Report a user action; False when no callback is set."""
    if cb is None:
        return False
    try:
        cb(*args)
    except Exception:  # a failing callback must not break the page
        log.exception("viewer: the %s callback failed", getattr(cb, "__name__", "a"))
    return True


def icon(name: str) -> Any:
    import viser

    return getattr(viser.Icon, name, None)


class Controls:
    """The widgets of one Viewer's page (built in viser's GUI, in its folders) and their handlers."""

    def __init__(
        self, gui: Any, viewer: Viewer, *, trails: bool, plot_points: int, plot_window: int, policy_switch: bool
    ) -> None:
        self._v = viewer
        self._local = threading.local()
        self._user_seek_at = 0.0
        self.info_markdown = gui.add_markdown("*waiting for the robot description…*")
        self.compare_markdown = gui.add_markdown("", visible=False)  # Compare's summary, at the top
        with gui.add_folder("Playback"):
            self.step_slider = gui.add_slider("Step", min=0, max=1, step=1, initial_value=0)
            # live until a Timeline or PlaybackStatus is seen (then Play / Pause)
            self.play_button = gui.add_button("Pause view", icon=icon("PLAYER_PAUSE"))
            self.step_buttons = gui.add_button_group("Step", ["-1", "+1"])
            self.episode_buttons = gui.add_button_group("Episode", ["previous", "next"])
            self.speed_slider = gui.add_slider(
                "Speed", min=SPEED_MIN, max=SPEED_MAX, step=0.1, initial_value=1.0, disabled=True
            )
            self.loop_checkbox = gui.add_checkbox("Loop", initial_value=False, disabled=True)
        with gui.add_folder("View"):
            self.env_number = gui.add_number("Env", initial_value=0, min=0, max=0, step=1)
            self.follow_checkbox = gui.add_checkbox("Follow env", initial_value=False)
            self.camera_buttons = gui.add_button_group("Camera", list(PRESET_LABELS))
            self.trails_checkbox = gui.add_checkbox("Trails", initial_value=trails)
            self.ghost_checkbox = gui.add_checkbox("Show B (ghost)", initial_value=True, visible=False)
        with gui.add_folder("Find") as find_folder:
            self.find = FindPanel(gui, find_folder, on_pick=viewer.show_moment, on_scope=viewer._update_find)
        with gui.add_folder("Policy", visible=policy_switch) as self.policy_folder:
            self.policy_checkbox = gui.add_checkbox("Policy enabled", initial_value=True)
        with gui.add_folder("Rewards"):
            self.rewards = RewardPanel(gui, plot_points=plot_points, plot_window=plot_window)
            self.rewards_markdown, self.rewards_plot = self.rewards.markdown, self.rewards.plot

        self.step_slider.on_update(self._on_slider)
        self.play_button.on_click(lambda _: viewer.set_paused(not viewer.paused))
        self.step_buttons.on_click(lambda e: viewer.step_by(1 if e.target.value == "+1" else -1))
        self.episode_buttons.on_click(lambda e: viewer.seek_episode(1 if e.target.value == "next" else -1))
        self.speed_slider.on_update(self._on_speed)
        self.loop_checkbox.on_update(self._user(lambda e: fire(viewer.callbacks.set_loop, bool(e.target.value))))
        self.env_number.on_update(self._user(lambda e: viewer.select_env(round(e.target.value))))
        self.follow_checkbox.on_update(self._user(lambda e: viewer._following(bool(e.target.value))))
        self.camera_buttons.on_click(lambda e: viewer.apply_camera(str(e.target.value)))
        self.trails_checkbox.on_update(lambda e: viewer.show_trails(bool(e.target.value)))
        self.ghost_checkbox.on_update(lambda e: viewer.show_ghost(bool(e.target.value)))
        self.policy_checkbox.on_update(
            self._user(lambda e: fire(viewer.callbacks.set_policy_enabled, bool(e.target.value)))
        )

    # -- values the viewer sets: their callbacks must not report user actions

    @contextlib.contextmanager
    def internal(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth

    def is_internal(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def show_info(self, robot: RobotInfo, mode: str, drawn: int, note: str | None = None) -> None:
        """The line at the top: live or replay, the env, how many envs are drawn, the policy; `note` below."""
        envs = f"{robot.num_envs} envs" + (f" (drawing {drawn})" if drawn < robot.num_envs else "")
        policy = f" · policy `{robot.policy}`" if robot.policy else ""
        lines = [f"**{mode}** · `{robot.env}` · {envs} · dt {robot.dt:g} s{policy}"]
        self.info_markdown.content = "\n\n".join(lines if note is None else [*lines, note])

    def show_paused(self, paused: bool, label: str) -> None:
        self.play_button.label = label
        self.play_button.icon = icon("PLAYER_PLAY" if paused else "PLAYER_PAUSE")

    def set_step_range(self, lo: int, hi: int) -> None:
        hi = max(hi, lo + 1)  # a slider needs min < max
        s = self.step_slider
        with self.internal():
            if s.max != hi:
                if hi < s.min:
                    s.min = lo
                s.max = hi
            if s.min != lo:
                s.min = lo

    def set_step(self, step: int) -> None:
        if time.monotonic() - self._user_seek_at < 0.5:  # the user is dragging it
            return
        s = self.step_slider
        with self.internal():
            s.value = min(max(step, s.min), s.max)

    def release_slider(self) -> None:
        """The slider follows the next seek even if the user just dragged it."""
        self._user_seek_at = 0.0

    def set_env(self, env: int) -> None:
        if self.env_number.value != env:
            with self.internal():
                self.env_number.value = env

    def set_num_envs(self, num_envs: int) -> None:
        with self.internal():
            self.env_number.max = max(num_envs - 1, 0)
            if self.env_number.value > num_envs - 1:
                self.env_number.value = 0

    def follow(self) -> None:
        """Tick "Follow env" (the viewer points the camera itself)."""
        if not self.follow_checkbox.value:
            with self.internal():
                self.follow_checkbox.value = True

    def enter_replay(self, callbacks: ViewerCallbacks) -> None:
        """Speed and Loop work when the replay node offers them; no policy switch on a replay."""
        with self.internal():
            self.speed_slider.disabled = callbacks.set_rate is None
            self.loop_checkbox.disabled = callbacks.set_loop is None
            self.policy_folder.visible = False

    def show_replay(self, *, loop: bool, rate: float) -> None:
        """Loop and Speed as the replay node reports them."""
        with self.internal():
            self.loop_checkbox.value = loop
            if SPEED_MIN <= rate <= SPEED_MAX:
                self.speed_slider.value = round(rate, 1)

    # -- handlers (viser threads, or the caller's for programmatic changes)

    def _user(self, handler: Callable[[Any], Any]) -> Callable[[Any], None]:
        """`handler`, for the user's changes only."""

        def on_update(event: Any) -> None:
            if not self.is_internal():
                handler(event)

        return on_update

    def _on_slider(self, event: Any) -> None:
        if self.is_internal():
            return
        self._user_seek_at = time.monotonic()
        self._v.seek(round(event.target.value))

    def _on_speed(self, event: Any) -> None:
        if self.is_internal():
            return
        rate = float(min(max(event.target.value, SPEED_MIN), SPEED_MAX))
        fire(self._v.callbacks.set_rate, round(rate, 3))
