"""The viewer's 3D scene: the robots of every drawn env, their trails, the floor and the label of
the selected env (viser's scene API; no GUI, no camera, no middleware).

    scene = RobotScene(server.scene, max_envs=64, trail_length=100)
    scene.build(robot, model, num_envs, num_bodies, env_ids=[0, 5, 3000])  # default: the first max_envs
    scene.draw(step, scene.drawn(poses))              # poses [N, B, 7] of every env
    scene.show_env(3001)                              # draw it too (in the slot drawn longest)
    scene.on_env_click(lambda env: ...)               # a robot clicked in the page

One batched GLB per robot body with one instance per env, moved by one update message per body
carrying its `batched_positions` and `batched_wxyzs` (viser is w, x, y, z; the messages x, y, z, w). The drawn
envs fill slots 0..E-1 (instance i of every body mesh is slot i); envs that share an origin
(`env_spacing` > 0) have their slots laid out on the grid of `rollout.model.env_grid_offsets`,
so any E envs of a run, e.g. 64 of 4,096, are drawn side by side.
A `ghost` scene (Compare's B) draws the same way under its own name, tinted and translucent,
with no floor, trails or label.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rollout.viewer.buffers import Trails, instance_transforms
from rollout.viewer.glb import matte_glb
from rollout.viewer.updates import send_arrays

log = logging.getLogger(__name__)

_FALLBACK_RADIUS = 0.04  # bodies drawn as small spheres when the model cannot be meshed
GHOST_TINT = (0.2, 0.5, 1.0, 0.5)  # Compare's B: blue and see-through over A


@dataclass(frozen=True)
class RobotInfo:
    """The parts of a RobotDescription the viewer uses."""

    env: str
    policy: str
    num_envs: int
    num_bodies: int
    body_names: tuple[str, ...]
    term_names: tuple[str, ...]
    dt: float
    env_spacing: float


class RobotScene:
    """The robots of up to `max_envs` envs (`env_ids`, the first ones by default), drawn at the
    poses they are given."""

    def __init__(
        self, scene: Any, *, max_envs: int, trail_length: int = 0, name: str = "/robot", ghost: bool = False
    ) -> None:
        self._scene = scene
        self.max_envs = int(max_envs)
        self.trail_length = 0 if ghost else int(trail_length)
        self.name = name
        self.ghost = ghost
        self.robot: RobotInfo | None = None
        self.body_handles: list[Any] = []
        self.mesh_radius = np.zeros(0)
        self.offsets = np.zeros((0, 3), np.float32)
        self.env_ids = np.zeros(0, np.int64)  # the env drawn in each slot [E]
        self._next_swap = 0  # slots from the last one back: where show_env puts an env
        self.bases = np.zeros((0, 3), np.float32)  # drawn base (root body) positions [E, 3], laid out
        self.body_pos: np.ndarray | None = None  # drawn body positions [B, E, 3]
        self.trails: Trails | None = None
        self.trail_handle: Any = None
        self._label: Any = None
        self._ground: Any = None
        self._on_click: Callable[[int], Any] | None = None

    @property
    def num_drawn(self) -> int:
        """Envs drawn (at most `max_envs`)."""
        return len(self.offsets)

    @property
    def num_bodies(self) -> int:
        return len(self.body_handles)

    @property
    def has_drawn(self) -> bool:
        return self.body_pos is not None

    def on_env_click(self, callback: Callable[[int], Any]) -> None:
        """`callback(env)` when a page clicks a robot of this scene (applies to scenes built later too)."""
        self._on_click = callback
        for h in self.body_handles:
            if h is not None:
                self._listen(h)

    def _listen(self, handle: Any) -> None:
        def clicked(event: Any) -> None:
            i = event.instance_index
            if self._on_click is not None and i is not None and 0 <= i < len(self.env_ids):
                self._on_click(int(self.env_ids[i]))

        handle.on_click(clicked)

    def clear(self) -> None:
        for h in (*self.body_handles, self.trail_handle, self._label, self._ground):
            if h is not None:
                h.remove()
        self.body_handles, self.trail_handle, self._label, self._ground = [], None, None, None
        self.body_pos = None

    def build(
        self,
        robot: RobotInfo,
        model: tuple[str, str],
        num_envs: int,
        num_bodies: int,
        *,
        fallback: bool = False,
        layout: np.ndarray | None = None,
        env_ids: np.ndarray | None = None,
    ) -> RobotInfo:
        """(Re)create the meshes for `num_envs` x `num_bodies`; returns `robot` with those sizes.
        `env_ids`: the envs to draw (those below `num_envs`, at most `max_envs`; default the
        first ones). `layout` [E, 3]: the slots' offsets (another scene's, to draw over it),
        instead of this robot's own grid; E envs are drawn."""
        from rollout.model import env_grid_offsets

        self.clear()
        if num_envs != robot.num_envs or num_bodies != robot.num_bodies:
            robot = replace(robot, num_envs=num_envs, num_bodies=num_bodies)
        self.robot = robot
        self.env_ids = drawn_env_ids(num_envs, self.max_envs, env_ids)
        if layout is not None:
            self.env_ids = self.env_ids[: len(layout)]
        e = len(self.env_ids) if layout is None else min(len(layout), len(self.env_ids))
        self._next_swap = 0
        spacing = robot.env_spacing
        if layout is not None:
            self.offsets = np.asarray(layout, np.float32)[:e].copy()
        else:
            self.offsets = env_grid_offsets(e, spacing) if spacing > 0 else np.zeros((e, 3), np.float32)
        self.bases = self.offsets.copy()
        meshes = None if fallback else robot_meshes(model, num_bodies)
        identity = np.tile(np.array([1.0, 0.0, 0.0, 0.0], np.float32), (e, 1))
        radius = []
        if meshes is None:
            import trimesh

            sphere = trimesh.creation.icosphere(subdivisions=1, radius=_FALLBACK_RADIUS)
            sphere.visual.vertex_colors = (150, 150, 160, 255)
            meshes = [sphere] * num_bodies
        tint = GHOST_TINT if self.ghost else None
        for b, mesh in enumerate(meshes):
            if mesh is None:
                self.body_handles.append(None)
                radius.append(0.0)
                continue
            body = robot.body_names[b] if b < len(robot.body_names) else f"body_{b + 1}"
            h = self._scene.add_batched_glb(
                f"{self.name}/{b:02d}_{_safe(body)}",
                matte_glb(mesh, tint=tint),
                batched_wxyzs=identity,
                batched_positions=self.offsets,
                lod="off",
                cast_shadow=not self.ghost,
            )
            if self._on_click is not None:
                self._listen(h)
            self.body_handles.append(h)
            radius.append(float(np.linalg.norm(mesh.vertices, axis=1).max()) if len(mesh.vertices) else 0.0)
        self.mesh_radius = np.asarray(radius)
        if not self.ghost:
            self._add_ground(model)
            self._label = self._scene.add_label(
                f"{self.name}_selected_env", "env 0", position=(0.0, 0.0, 0.0), anchor="bottom-center"
            )
        self.trails = Trails(self.trail_length, e) if self.trail_length > 0 else None
        return robot

    def _add_ground(self, model: tuple[str, str]) -> None:
        from rollout.model import ModelError, static_geometry

        z = 0.0
        try:
            planes = static_geometry(*model).planes  # type: ignore[arg-type]
            if planes:
                z = float(planes[0].position[2])
        except ModelError:
            pass
        # one grid under every drawn env, centred on their layout, with a single line spacing
        # (two spacings read as two overlapping floors from a low camera)
        lo, hi = self.offsets[:, :2].min(axis=0), self.offsets[:, :2].max(axis=0)
        centre = (lo + hi) / 2
        size = float(max(10.0, *(hi - lo + 6.0)))
        cell = 1.0 if size <= 40 else 2.0 ** math.ceil(math.log2(size / 40))
        self._ground = self._scene.add_grid(
            "/ground",
            width=size,
            height=size,
            position=(float(centre[0]), float(centre[1]), z),
            cell_size=cell,
            section_size=cell,
        )

    def drawn(self, poses: np.ndarray) -> np.ndarray:
        """The drawn envs' rows [E, B, 7] of every env's `poses` [N, B, 7] (a view when they
        are the first E)."""
        e = len(self.env_ids)
        if e and self.env_ids[-1] == e - 1 and np.array_equal(self.env_ids, np.arange(e)):
            return poses[:e]
        return poses[self.env_ids]

    def slot_of(self, env: int) -> int | None:
        """The slot env `env` is drawn in, or None."""
        hit = np.flatnonzero(self.env_ids == int(env))
        return int(hit[0]) if hit.size else None

    def show_env(self, env: int) -> int | None:
        """Draw env `env` (of the run) too: in the slot the longest without a swap, counting from
        the last one; the slot, or None for an env outside the run. Takes effect at the next draw;
        the trails start afresh."""
        slot = self.slot_of(env)
        if slot is not None or self.robot is None or not 0 <= int(env) < self.robot.num_envs or not len(self.env_ids):
            return slot
        slot = len(self.env_ids) - 1 - self._next_swap % len(self.env_ids)
        self._next_swap += 1
        self.env_ids = self.env_ids.copy()
        self.env_ids[slot] = int(env)
        if self.trails is not None:
            self.trails.clear()
        return slot

    def draw(self, step: int, poses: np.ndarray) -> bool:
        """Move every body of every drawn env to `poses` [E, B, 7] (slot order: `drawn(...)`;
        inside `server.atomic()`); True when the trails got a new point."""
        positions, wxyzs = instance_transforms(poses, self.offsets)
        for b, h in enumerate(self.body_handles):
            if h is not None:  # fresh arrays, one message per body (see updates.py)
                send_arrays(h, batched_positions=positions[b], batched_wxyzs=wxyzs[b])
        self.body_pos = positions
        self.bases = positions[0]
        return self.trails is not None and self.trails.push(step, self.bases)

    def set_visible(self, visible: bool) -> None:
        for h in self.body_handles:
            if h is not None:
                h.visible = visible

    def show_trails(self, show: bool) -> None:
        """Draw the trails as they are now (or hide them)."""
        if self.trails is None:
            return
        seg = self.trails.segments() if show else np.zeros((0, 2, 3), np.float32)
        if len(seg) == 0:
            if self.trail_handle is not None:
                self.trail_handle.visible = False
            return
        if self.trail_handle is None:
            self.trail_handle = self._scene.add_line_segments(
                f"{self.name}_trails", seg, colors=(255, 140, 0), thickness=2.0, thickness_units="screen"
            )
        else:
            send_arrays(self.trail_handle, points=seg)
            self.trail_handle.visible = True

    def label(self, env: int) -> None:
        """Put the "env N" label above env `env` (when it is drawn)."""
        slot = self.slot_of(env)
        if self._label is None or self.body_pos is None or slot is None or slot >= self.body_pos.shape[1]:
            return
        top = float(self.body_pos[:, slot, 2].max()) + 0.3
        self._label.position = (float(self.bases[slot, 0]), float(self.bases[slot, 1]), top)
        self._label.text = f"env {env}"


def drawn_env_ids(num_envs: int, max_envs: int, env_ids: Any = None) -> np.ndarray:
    """The envs to draw: `env_ids` (in order, without repeats) below `num_envs`, at most
    `max_envs` of them; the first `max_envs` when none is given (or none is in the run)."""
    if env_ids is not None and len(env_ids):
        ids = np.asarray(env_ids, np.int64).reshape(-1)
        _, first = np.unique(ids, return_index=True)
        ids = ids[np.sort(first)]
        ids = ids[(ids >= 0) & (ids < num_envs)][:max_envs]
        if ids.size:
            return ids
    return np.arange(min(num_envs, max_envs), dtype=np.int64)


def state_poses(msg: Any) -> np.ndarray:
    """[N, B, 7] float32 body poses of a rollout_msgs/State (its sizes checked by `state_misfit`);
    a State without bodies (a bag made from a bare NPZ) gives its base poses as [N, 1, 7]."""
    n, b = int(msg.num_envs), int(msg.num_bodies)
    if b == 0:
        base = (np.asarray(msg.base_pos, np.float32).reshape(n, 3), np.asarray(msg.base_quat, np.float32).reshape(n, 4))
        return np.concatenate(base, axis=1)[:, None, :]
    return np.asarray(msg.body_poses, np.float32).reshape(n, b, 7)


def robot_info(msg: Any) -> RobotInfo:
    """The RobotInfo of a rollout_msgs/RobotDescription."""
    return RobotInfo(
        env=str(msg.env),
        policy=str(msg.policy),
        num_envs=int(msg.num_envs),
        num_bodies=len(msg.body_names),
        body_names=tuple(msg.body_names),
        term_names=tuple(msg.reward_term_names),
        dt=float(msg.dt),
        env_spacing=float(msg.env_spacing),
    )


def robot_meshes(model: tuple[str, str], num_bodies: int) -> list[Any] | None:
    """One trimesh (or None for a body without geometry) per body; None when the model cannot be meshed."""
    from rollout.model import ModelError, body_meshes

    text, fmt = model
    try:
        meshes = body_meshes(text, fmt)  # type: ignore[arg-type]
    except ModelError as e:
        log.warning("viewer: drawing bodies as spheres: %s", e)
        return None
    if len(meshes) != num_bodies:
        log.warning(
            "viewer: the model has %d bodies, the states %d; drawing bodies as spheres", len(meshes), num_bodies
        )
        return None
    if all(m.is_empty for m in meshes):
        return None
    return [None if m.is_empty else m.to_trimesh() for m in meshes]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name) or "body"


def state_misfit(msg: Any) -> str | None:
    """Why a rollout_msgs/State cannot be drawn (its sizes disagree with its arrays), or None."""
    n, b = int(msg.num_envs), int(msg.num_bodies)
    if n < 1:
        return f"num_envs is {n}"
    if b > 0:
        have = np.asarray(msg.body_poses).size
        return None if have == n * b * 7 else f"num_envs {n} x num_bodies {b} x 7 != {have} body_poses values"
    pos, quat = np.asarray(msg.base_pos).size, np.asarray(msg.base_quat).size
    return None if (pos, quat) == (n * 3, n * 4) else f"num_envs {n} does not fit {pos} base_pos / {quat} base_quat values"
