"""The viewer's camera: the presets of `rollout.cameras` fitted to the drawn envs, sent to every page.

    rig = CameraRig(server)
    rig.apply("side", framing)          # the view on every page (and for pages still to come)
    rig.to_client(client, framing)      # one page, fitted to its own field of view and shape
    rig.follow(base, prev_base)         # translate every page's camera with a followed base
    cam = PageCamera(server, framing=lambda: framing_or_none, initial="side")   # the Viewer's
    cam.choose("top"); cam.drawn(prev_base); cam.follow(force=True); cam.greet(client)

`Framing` is what the fit needs from the scene: the selected env's bodies and every drawn base.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rollout.cameras import DEFAULT_FOVY, CameraPose, camera_pose

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Framing:
    """The drawn scene, as far as fitting a view goes."""

    body: np.ndarray
    """[B, 3] body positions of the selected env."""
    radius: np.ndarray
    """[B] radius of each body's mesh (zeros when unknown)."""
    bases: np.ndarray
    """[E, 3] base positions of every drawn env."""
    env: int
    """The selected env (a row of `bases`)."""
    follow: bool
    """Frame the selected env alone."""


class CameraRig:
    """The preset last applied and its pose, on one viser server's pages."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.pose: CameraPose | None = None
        self.preset: str | None = None

    def pose_for(self, name: str, f: Framing, *, aspect: float = 16 / 9, fovy: float | None = None) -> CameraPose:
        """The view `name` of the drawn envs (or of the selected env when following)."""
        base = f.bases[f.env]
        r = f.radius if len(f.radius) == len(f.body) else np.zeros(len(f.body))
        radius = float(max((np.linalg.norm(f.body - base, axis=1) + r).max(), 0.3))
        target_z = float(f.body[:, 2].mean())
        if fovy is None:
            fov = self.server.initial_camera.fov
            fovy = math.degrees(fov) if fov else DEFAULT_FOVY
        if name == "follow" or f.follow:
            return camera_pose(name, np.array([base[0], base[1], target_z]), 1.5 * radius, fovy=fovy, aspect=aspect)
        centres = np.column_stack([f.bases[:, :2], np.full(len(f.bases), target_z)])
        target = (centres.min(axis=0) + centres.max(axis=0)) / 2
        return camera_pose(name, target, radius, centres=centres, fovy=fovy, aspect=aspect)

    def apply(self, name: str, f: Framing) -> CameraPose:
        """Show `name` on every page, and to pages that connect later."""
        self.preset = name
        self.pose = pose = self.pose_for(name, f)
        ic = self.server.initial_camera
        ic.position, ic.look_at, ic.up = pose.eye, pose.look_at, pose.up
        for client in self.server.get_clients().values():
            self.to_client(client, f)
        return pose

    def to_client(self, client: Any, f: Framing) -> None:
        """The current preset on one page, fitted to its own field of view and shape."""
        if self.preset is None:
            return
        cam = client.camera
        try:
            cam.update_timestamp  # noqa: B018 -- asserts until the page has reported its camera
            # the control panel floats over the right of the canvas: fit into the part left of it
            pose = self.pose_for(self.preset, f, aspect=0.75 * float(cam.aspect), fovy=math.degrees(float(cam.fov)))
            with client.atomic():
                cam.up_direction = pose.up
                cam.position = pose.eye  # moves look_at along with it ...
                cam.look_at = pose.look_at  # ... so set it afterwards
        except AssertionError:  # not reported yet: the viewer applies it when the page reports
            return
        except ValueError as e:
            log.debug("viewer: camera not set: %s", e)

    def follow(self, base: np.ndarray, prev_base: np.ndarray | None = None, *, force: bool = False) -> None:
        """Translate every page's camera (x, y) with a followed base (onto it when `force` or no
        previous base is known), keeping the angle."""
        if self.pose is None:
            return
        if force or prev_base is None:
            delta = np.array([base[0], base[1], self.pose.look_at[2]]) - self.pose.look_at
        else:
            delta = np.array([base[0] - prev_base[0], base[1] - prev_base[1], 0.0])
        if not np.any(np.abs(delta) > 1e-6):
            return
        c = self.pose
        self.pose = CameraPose(c.eye + delta, c.look_at + delta, c.up, c.distance, c.azimuth, c.elevation)
        for client in self.server.get_clients().values():
            try:
                cam = client.camera
                cam.position = np.asarray(cam.position) + delta  # look_at moves with it
            except AssertionError:
                continue


class PageCamera:
    """The Viewer's camera: a preset fitted to what `framing()` says is drawn (None before the
    first state), applied once a state is drawn, then moved along with a followed env."""

    def __init__(self, server: Any, framing: Callable[[], Framing | None], *, initial: str) -> None:
        self.rig = CameraRig(server)
        self._framing = framing
        self.initial = initial  # the preset for the first state
        self.pending = True  # a preset waits for the next drawn state
        self._greeted: set[int] = set()

    @property
    def pose(self) -> CameraPose | None:
        return self.rig.pose

    @property
    def preset(self) -> str | None:
        return self.rig.preset

    def choose(self, name: str) -> CameraPose | None:
        """Show `name` on every page now, or once a state is drawn (then None)."""
        self.rig.preset = name
        pose = self.show(name)
        if pose is None:
            self.pending = True
        return pose

    def show(self, name: str) -> CameraPose | None:
        """Show `name` on every page if a state is drawn."""
        f = self._framing()
        return None if f is None else self.rig.apply(name, f)

    def drawn(self, prev_base: np.ndarray | None) -> None:
        """A state was drawn (the selected env's base was `prev_base` before it, if drawn then)."""
        if self.pending:
            self.pending = False
            self.show(self.preset or self.initial)
        elif prev_base is not None and (f := self._framing()) is not None and f.follow:
            self.rig.follow(f.bases[f.env], prev_base)

    def follow(self, *, force: bool = False) -> None:
        """Onto the selected env (`force`) or along with it."""
        if (f := self._framing()) is not None:
            self.rig.follow(f.bases[f.env], None, force=force)

    def greet(self, client: Any) -> None:
        """A page that has just reported its camera for the first time starts where the others look."""
        if client.client_id in self._greeted or self.pose is None:
            return
        self._greeted.add(client.client_id)
        if (f := self._framing()) is not None:
            self.rig.to_client(client, f)
