"""A rollout, or a step range of it, as one HTML file that plays offline in any browser.

The page is viser's own static client with the recorded scene inlined (`StateSerializer.as_html`):
its JavaScript, its styles and the scene data (base64) are in the one file, so it opens from
file:// with no server and no network. The robots are drawn as the live viewer draws them (one
batched matte GLB per body, one instance per env, moved by `instance_transforms`), over a ground
grid, with a label naming the first drawn env and the step; viser's player gives the timeline
(play/pause, scrub, speed) at the bottom, its clock in sim seconds from the first step shown.

The bag is read one State at a time, only at the frames the page holds (every k-th step, k chosen
so the page plays `fps` frames per sim second), so memory stays near the size of the page.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rollout.bag import Bag
from rollout.cameras import parse_preset
from rollout.errors import BagError, ParameterError
from rollout.msg_checks import robot_error, state_error
from rollout.topics import ROBOT, STATE
from rollout.viewer.buffers import instance_transforms
from rollout.viewer.glb import matte_glb

DEFAULT_FPS = 30.0
DEFAULT_MAX_ENVS = 64  # as the live viewer
_FALLBACK_RADIUS = 0.04  # bodies drawn as small spheres when the model cannot be meshed
_ASPECT = 4 / 3  # the view is fitted to a canvas this shape or wider
_IDENTITY = np.array([1.0, 0.0, 0.0, 0.0], np.float32)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Shared:
    """What `share_html` wrote."""

    path: Path
    frames: int
    """Frames in the page."""
    first_step: int
    last_step: int
    """The first and last step shown (both included)."""
    stride: int
    """Every `stride`-th recorded step is a frame."""
    env_ids: tuple[int, ...]
    """The envs drawn (envs of the recording)."""
    duration: float
    """Length of the page's timeline, sim seconds."""
    size: int
    """Bytes of the file."""
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the user: what is in the page and how big it is."""
        envs = _env_text(self.env_ids)
        every = "every step" if self.stride == 1 else f"every {self.stride} steps"
        return (
            f"wrote {self.path}: steps {self.first_step}-{self.last_step} ({_count(self.frames, 'frame')}, {every}, "
            f"{self.duration:.1f} s), {envs}, {self.size / 1e6:.2f} MB"
        )


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _env_text(env_ids: Sequence[int]) -> str:
    ids = list(env_ids)
    count = _count(len(ids), "env")
    if ids == list(range(len(ids))):
        return count
    return f"{count} ({','.join(map(str, ids[:8]))}{',...' if len(ids) > 8 else ''})"


# ----------------------------------------------------------------------------- which frames


def frame_stride(dt: float, fps: float) -> int:
    """Recorded steps per frame so the page plays about `fps` frames per sim second (at least 1);
    dt: the control step, seconds."""
    if not fps > 0:  # also NaN
        raise ParameterError(f"--fps must be a positive number, got {fps:g}")
    return max(1, round(1.0 / (fps * dt)))


def step_window(steps: np.ndarray, first: int | None, stop: int | None) -> np.ndarray:
    """Positions in sorted unique `steps` of the steps in [first, stop); a clear error when none."""
    lo, hi = int(steps[0]), int(steps[-1])
    if first is not None and stop is not None and stop <= first:
        raise ParameterError(f"--steps {first}:{stop} is empty: the stop must be after the start")
    keep = np.ones(steps.size, bool)
    if first is not None:
        keep &= steps >= first
    if stop is not None:
        keep &= steps < stop
    if not keep.any():
        asked = f"{'' if first is None else first}:{'' if stop is None else stop}"
        raise ParameterError(f"--steps {asked} holds no recorded step; the bag has steps {lo} to {hi}")
    return np.flatnonzero(keep)


@dataclass(frozen=True)
class _Plan:
    """The frames of the page and what is needed to draw them."""

    state_ix: np.ndarray  # [F] message index of each frame in /rollout/state
    steps: np.ndarray  # [F] step of each frame
    sim_time: np.ndarray  # [F] sim time of each frame, seconds
    stride: int
    dt: float
    env_ids: np.ndarray  # [E] envs drawn
    n_all: int
    n_bodies: int
    robot: Any  # the RobotDescription
    notes: tuple[str, ...]


def _plan(
    bag: Bag,
    steps: tuple[int | None, int | None] | None,
    envs: Sequence[int] | None,
    max_envs: int,
    fps: float,
) -> _Plan:
    if STATE not in bag.topics or bag.count(STATE) == 0:
        raise BagError(f"{bag.path} has no {STATE} messages: nothing to draw (its topics: {', '.join(bag.topics) or 'none'})")
    if ROBOT not in bag.topics or bag.count(ROBOT) == 0:
        raise BagError(f"{bag.path} has no {ROBOT} message: the robot's model is needed to draw it")
    robot = bag.decode(ROBOT, bag.count(ROBOT) - 1)
    meta = bag.read_arrays(STATE, ["step", "sim_time", "num_envs", "num_bodies"])
    uniq, first = np.unique(meta["step"], return_index=True)  # a repeated step: its first message
    window = step_window(uniq, *(steps or (None, None)))
    ix = first[window]
    n_all, n_bodies = int(meta["num_envs"][ix[0]]), int(meta["num_bodies"][ix[0]])
    if np.any(meta["num_envs"][ix] != n_all) or np.any(meta["num_bodies"][ix] != n_bodies):
        raise BagError(f"{STATE}: the number of envs or bodies changes within the steps asked for")
    first_state = bag.decode(STATE, int(ix[0]))
    if err := state_error(first_state) or robot_error(robot, first_state):
        raise BagError(f"{bag.path}: {err}")
    if n_bodies == 0:
        raise BagError(f"{STATE} has no body poses: nothing to draw")
    env_ids = np.arange(n_all) if envs is None else np.asarray(envs, np.int64).reshape(-1)
    if env_ids.size == 0 or env_ids.min() < 0 or env_ids.max() >= n_all:
        raise ParameterError(f"--envs must be between 0 and {n_all - 1} (the recording has {n_all} envs), got {env_ids.tolist()}")
    if max_envs < 1:
        raise ParameterError(f"--max-envs must be at least 1, got {max_envs}")
    notes = []
    if env_ids.size > max_envs:
        notes.append(f"drawing the first {max_envs} of {env_ids.size} envs (--max-envs)")
        env_ids = env_ids[:max_envs]
    sim_time = meta["sim_time"][ix].astype(np.float64)
    dt = float(robot.dt)  # robot_error: a positive number
    stride = frame_stride(dt, fps)
    pick = np.arange(0, ix.size, stride)
    return _Plan(ix[pick], uniq[window][pick], sim_time[pick], stride, dt, env_ids, n_all, n_bodies, robot, tuple(notes))


# ----------------------------------------------------------------------------- the scene


def _robot_glbs(robot: Any, num_bodies: int) -> tuple[list[bytes | None], np.ndarray]:
    """One GLB per body (None for a body without geometry), small spheres when the model cannot be
    meshed; and each body mesh's radius [B] (for fitting the camera)."""
    from rollout.model import ModelError, body_meshes

    meshes = None
    try:
        got = body_meshes(str(robot.model), str(robot.model_format) or "mjcf")  # type: ignore[arg-type]
        if len(got) == num_bodies and not all(m.is_empty for m in got):
            meshes = [None if m.is_empty else m.to_trimesh() for m in got]
    except ModelError:
        pass
    if meshes is None:
        import trimesh

        sphere = trimesh.creation.icosphere(subdivisions=1, radius=_FALLBACK_RADIUS)
        sphere.visual.vertex_colors = (150, 150, 160, 255)
        meshes = [sphere] * num_bodies
    radius = np.array([0.0 if m is None or not len(m.vertices) else float(np.linalg.norm(m.vertices, axis=1).max()) for m in meshes])
    return [None if m is None else matte_glb(m) for m in meshes], radius


def _ground_z(robot: Any) -> float:
    from rollout.model import ModelError, static_geometry

    try:
        planes = static_geometry(str(robot.model), str(robot.model_format) or "mjcf").planes  # type: ignore[arg-type]
    except ModelError:
        return 0.0
    return float(planes[0].position[2]) if planes else 0.0


def view_track(bases: np.ndarray, preset: str, window: int) -> np.ndarray:
    """Where the view is centred at each frame, [F, 3] (z 0): the drawn envs' median base (x, y),
    averaged over `window` frames so that a reset or a stumble does not shake it; with "follow",
    the first drawn env's base itself (a chase camera).

    bases: [F, E, 3] base positions of the drawn envs, laid out.
    """
    track = np.zeros((bases.shape[0], 3))
    if preset == "follow":
        track[:, :2] = bases[:, 0, :2]
        return track
    track[:, :2] = np.median(bases[:, :, :2], axis=1)
    w = max(1, min(int(window), len(track)))
    if w > 1:  # centred moving average, the ends padded with their own values
        pad = np.pad(track[:, :2], ((w // 2, w - 1 - w // 2), (0, 0)), mode="edge")
        c = np.cumsum(np.vstack([np.zeros((1, 2)), pad]), axis=0)
        track[:, :2] = (c[w:] - c[:-w]) / w
    return track


def _add_ground(scene: Any, name: str, lo: np.ndarray, hi: np.ndarray, z: float) -> None:
    """One grid over [lo, hi] (x, y) and some margin, with one line spacing (two spacings read as
    two overlapping floors from a low camera)."""
    centre = (lo + hi) / 2
    size = float(max(10.0, *(hi - lo + 6.0)))
    cell = 1.0 if size <= 40 else 2.0 ** math.ceil(math.log2(size / 40))
    scene.add_grid(name, width=size, height=size, position=(float(centre[0]), float(centre[1]), z),
                   cell_size=cell, section_size=cell)  # fmt: skip


@contextlib.contextmanager
def _quiet_server() -> Any:
    """A viser server on a free loopback port, only to record a scene (nothing is served)."""
    import viser

    with contextlib.redirect_stdout(io.StringIO()):  # viser prints a banner and a goodbye
        server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    try:
        yield server
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            server.stop()


class _Scene:
    """The page's scene on a viser server: robots, ground and label under one frame that moves so
    the view stays centred (the world moves under a still camera, so the page can be orbited while
    it plays)."""

    def __init__(self, server: Any, plan: _Plan, offsets: np.ndarray, bases: np.ndarray) -> None:
        scene = server.scene
        # lit by lights alone, as the live viewer: no environment map to wait for (glb.py)
        scene.configure_environment_map(None)
        scene.add_light_hemisphere("/lights/sky", ground_color=(120, 110, 100), intensity=1.0)
        self.world = scene.add_frame("/world", show_axes=False)
        flat = bases[..., :2].reshape(-1, 2)
        _add_ground(scene, "/world/ground", flat.min(axis=0), flat.max(axis=0), _ground_z(plan.robot))
        glbs, self.radius = _robot_glbs(plan.robot, plan.n_bodies)
        names = list(plan.robot.body_names)
        identity = np.tile(_IDENTITY, (len(offsets), 1))
        self.bodies = [
            None if glb is None else scene.add_batched_glb(
                f"/world/robot/{k:02d}_{_safe(names[k] if k < len(names) else f'body_{k + 1}')}", glb,
                batched_wxyzs=identity, batched_positions=offsets, lod="off",
            )
            for k, glb in enumerate(glbs)
        ]  # fmt: skip
        self.env = int(plan.env_ids[0])
        self.label = scene.add_label("/world/env_label", f"env {self.env}", position=(0.0, 0.0, 0.0), anchor="bottom-center")

    def draw(self, step: int, positions: np.ndarray, wxyzs: np.ndarray, centre: np.ndarray) -> None:
        """One frame: positions [B, E, 3] and wxyzs [B, E, 4] of every body; `centre` [3] in view."""
        self.world.position = tuple(-centre)
        for k, h in enumerate(self.bodies):
            if h is not None:
                h.batched_positions = positions[k]
                h.batched_wxyzs = wxyzs[k]
        base = positions[0, 0]
        self.label.position = (float(base[0]), float(base[1]), float(positions[:, 0, 2].max()) + 0.3)
        self.label.text = f"env {self.env} · step {step}"


def _page(bag: Bag, plan: _Plan, camera: str, progress: Progress | None) -> tuple[str, float]:
    """The HTML of the page and its timeline length (sim seconds)."""
    from rollout.model import env_grid_offsets
    from rollout.viewer.camera import CameraRig, Framing

    e, b, n_all, frames = plan.env_ids, plan.n_bodies, plan.n_all, int(plan.steps.size)
    spacing = float(plan.robot.env_spacing)
    offsets = env_grid_offsets(n_all, spacing)[e] if spacing > 0 else np.zeros((e.size, 3), np.float32)
    bases = bag.read_arrays(STATE, ["base_pos"], indices=plan.state_ix, take={"base_pos": _columns(e, 3)})["base_pos"]
    bases = bases.reshape(frames, e.size, 3) + offsets
    preset = parse_preset(camera)
    frame_dt = plan.stride * plan.dt
    track = view_track(bases, preset, round(1.0 / frame_dt))
    cols = _columns(e, b * 7)
    poses = np.empty(cols.size, np.float32)
    with _quiet_server() as server:
        scene = _Scene(server, plan, offsets, bases)
        recording = server.get_scene_serializer()
        for f, msg in enumerate(bag.iter_decoded(STATE, plan.state_ix)):
            if msg.body_poses.size != n_all * b * 7:
                raise BagError(f"{STATE}: body_poses has {msg.body_poses.size} values at step {int(plan.steps[f])}, "
                               f"expected {n_all} envs x {b} bodies x 7")  # fmt: skip
            np.take(msg.body_poses, cols, out=poses)
            positions, wxyzs = instance_transforms(poses.reshape(e.size, b, 7), offsets)
            if f > 0:
                recording.insert_sleep(max(float(plan.sim_time[f] - plan.sim_time[f - 1]), 0.0))
            scene.draw(int(plan.steps[f]), positions, wxyzs, track[f])
            if f == 0:  # the page's view (and its Reset View), fitted to the first frame
                seen = Framing(positions[:, 0] - track[0], scene.radius, positions[0] - track[0], 0, preset == "follow")
                pose = CameraRig(server).pose_for(preset, seen, aspect=_ASPECT)
                ic = server.initial_camera
                ic.position, ic.look_at, ic.up = pose.eye, pose.look_at, pose.up
            if progress is not None and (f % 32 == 0 or f == frames - 1):
                progress(f + 1, frames)
        recording.insert_sleep(frame_dt)  # the last frame stays up for as long as the others
        return recording.as_html(), float(plan.sim_time[-1] - plan.sim_time[0]) + frame_dt


def _columns(env_ids: np.ndarray, width: int) -> np.ndarray:
    """Flat indices of the values of `env_ids` in an env-major [N * width] array."""
    return (env_ids[:, None] * width + np.arange(width)).ravel()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name) or "body"


def _titled(page: str, title: str) -> str:
    """`page` with its <title> naming the rollout instead of viser."""
    return page.replace("<title>Viser</title>", f"<title>{html.escape(title)}</title>", 1)


# ----------------------------------------------------------------------------- the export


def share_html(
    bag_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    steps: tuple[int | None, int | None] | None = None,
    envs: Sequence[int] | None = None,
    max_envs: int = DEFAULT_MAX_ENVS,
    fps: float = DEFAULT_FPS,
    camera: str = "side",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Shared:
    """Write a rollout as one self-contained HTML page that plays offline.

    Args:
        bag_path: a bag folder or .mcap file.
        output: the .html file to write (it appears only when complete).
        steps: control steps [start, stop) to show (either end None: open); default all.
        envs: envs to draw (in this order); default all, at most `max_envs` of them.
        max_envs: draw at most this many envs (the first of `envs`).
        fps: frames per sim second; a frame every round(1 / (fps * dt)) recorded steps, so an fps
            at or above the control rate keeps every step.
        camera: the initial view: "top", "side", "front" or "follow" (a chase camera on the first env).
        overwrite: replace `output` if it exists.
        progress: called as progress(frames done, frames) while reading.
    """
    out = Path(output)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ParameterError(f"output {out} must end in .html")
    if out.exists() and not overwrite:
        raise BagError(f"{out} already exists; pass -f to overwrite it")
    parse_preset(camera)
    if not out.parent.is_dir():
        raise BagError(f"cannot write {out}: no folder {out.parent}")
    with Bag(bag_path) as bag:
        plan = _plan(bag, steps, envs, max_envs, fps)
        page, duration = _page(bag, plan, camera, progress)
    first, last = int(plan.steps[0]), int(plan.steps[-1])
    page = _titled(page, f"{Path(bag_path).name} · steps {first}-{last}")
    tmp = out.with_name(f".{out.name}.part")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise BagError(f"cannot write {out}: {e.strerror or e}") from None
    return Shared(out, int(plan.steps.size), first, last, plan.stride, tuple(int(x) for x in plan.env_ids),
                  duration, out.stat().st_size, plan.notes)  # fmt: skip
