"""The viewer's Compare (A/B) part: B's robots as a ghost over A's, B's series for the plots, and
the summary of both at the top of the panel. Fed by the /compare topics of a replay with
`compare:=B` (the bridge calls `Viewer.on_compare_*`); the Viewer holds the lock.

    cmp = Comparison(server.scene, markdown)
    cmp.on_robot(msg); cmp.layout(scene_a)              # B's robot; drawn over A's drawn envs
    cmp.on_state(msg)                                   # B's State at A's step
    cmp.on_timeline(msg); cmp.show_summary(run_a, "A")  # B's whole run; the summary table

B is drawn with its own model (its RobotDescription), on A's layout, for the envs both have.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from rollout.viewer.buffers import RewardSeries
from rollout.viewer.compare import common_envs, summarize, summary_table
from rollout.viewer.moments import RunSeries
from rollout.viewer.scene import RobotInfo, RobotScene, robot_info, state_poses

log = logging.getLogger(__name__)


class Comparison:
    """B of an A/B replay."""

    def __init__(self, scene: Any, markdown: Any, *, max_envs: int) -> None:
        self._scene_api = scene
        self.markdown = markdown
        self.max_envs = int(max_envs)
        self.robot: RobotInfo | None = None
        self._model: tuple[str, str] = ("", "mjcf")
        self._key: tuple | None = None
        self.scene: RobotScene | None = None
        self.run: RunSeries | None = None
        self.series: RewardSeries | None = None
        self._layout: np.ndarray | None = None
        self.shown_step: int | None = None

    @property
    def active(self) -> bool:
        """A B has been announced (its robot or its timeline)."""
        return self.robot is not None or self.run is not None

    def on_robot(self, msg: Any) -> bool:
        """B's RobotDescription; True when it changed (then call `layout`)."""
        key = (msg.model, msg.model_format, tuple(msg.body_names), int(msg.num_envs))
        if key == self._key:
            return False
        self._key = key
        self.robot = robot_info(msg)
        self._model = (str(msg.model), str(msg.model_format) or "mjcf")
        return True

    def layout(self, offsets: np.ndarray, env_ids: np.ndarray | None = None) -> None:
        """(Re)build B's ghost over A's drawn envs `env_ids` [E] (default 0..E-1) at `offsets`
        [E, 3] (only those B has)."""
        if self.robot is None or len(offsets) == 0:
            return
        ids = np.arange(len(offsets)) if env_ids is None else np.asarray(env_ids, np.int64)
        has = np.flatnonzero(ids < self.robot.num_envs)[: self.max_envs]
        if has.size == 0:
            return
        if self.scene is None:
            self.scene = RobotScene(self._scene_api, max_envs=has.size, name="/compare", ghost=True)
        self.scene.max_envs = has.size
        self._layout = np.asarray(offsets, np.float32)[has]
        self.scene.build(
            self.robot, self._model, self.robot.num_envs, self.robot.num_bodies, layout=self._layout, env_ids=ids[has]
        )
        self.shown_step = None

    def show(self, visible: bool) -> None:
        """Show or hide the ghost."""
        if self.scene is not None:
            self.scene.set_visible(visible)

    def on_state(self, msg: Any) -> None:
        """B's State: moves the ghost (call inside `server.atomic()`)."""
        sc = self.scene
        if sc is None or not sc.num_drawn:
            return
        poses = state_poses(msg)
        if poses.shape[0] <= sc.env_ids.max() or poses.shape[1] != sc.num_bodies:
            log.warning("viewer: compare: a state of %d envs x %d bodies does not fit B's robot", *poses.shape[:2])
            return
        sc.draw(int(msg.step), sc.drawn(poses))
        self.shown_step = int(msg.step)

    def on_timeline(self, msg: Any) -> None:
        """B's Timeline: its series for the plots and the summary."""
        self.run = RunSeries.from_timeline(msg)
        series = RewardSeries()
        series.set_timeline(
            np.asarray(msg.steps, np.int64), list(msg.term_names), np.asarray(msg.env_ids), np.asarray(msg.total),
            np.asarray(msg.terms), np.asarray(msg.total_mean), np.asarray(msg.terms_mean),
        )  # fmt: skip
        self.series = series

    def show_summary(self, run_a: RunSeries | None, label_a: str) -> None:
        """The summary table over the envs both runs cover (when both are known)."""
        if run_a is None or self.run is None:
            return
        envs = common_envs(run_a, self.run)
        b = self.robot.policy if self.robot and self.robot.policy else "B"
        self.markdown.content = summary_table(
            summarize(run_a, envs), summarize(self.run, envs), label_a, b, envs=len(envs)
        )
        self.markdown.visible = True
