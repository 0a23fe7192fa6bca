"""Offscreen frames of recorded rollouts with MuJoCo's renderer, on a software GL when there is no GPU.

    from rollout.render import FrameRenderer
    with FrameRenderer(description.model, preset="side", envs=[0, 1, 2, 3],
                       spacing=description.env_spacing, overlay=True) as renderer:
        frame = renderer.render(state)              # [H, W, 3] uint8, also from body_poses [N, B, 7]

The scene is driven by body poses, not by qpos, so any recorded robot can be drawn: each geom's
world pose is its body's pose (``State.body_poses``, x, y, z, qx, qy, qz, qw) times the geom's
offset in the body (``geom_pos``/``geom_quat``), computed for all shown envs at once with numpy and
written into ``MjData.geom_xpos``/``geom_xmat``. The first shown env is drawn with
``mjv_updateScene`` (which also draws the world: floor, lights, sky); each further env is added
with ``mjv_addGeoms``. World geoms are moved to geom group 5 in the renderer's private copy of the
model so that only the first pass draws them.

GL: ``MUJOCO_GL`` is respected when set (osmesa, egl, glfw). Otherwise glfw is tried when there
is a display, then OSMesa (Debian ``libosmesa6``), then EGL (``libegl1`` + ``libegl-mesa0``).
The context is created here, so it does not matter whether mujoco was imported before.
Renderer settings for speed on a CPU: no multisampling, no shadows, no reflections.
"""

from __future__ import annotations

import atexit
import ctypes.util
import functools
import os
import sys
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rollout.cameras import DEFAULT_FOVY, CameraPose, camera_pose, parse_preset, project_points, to_mjv_camera
from rollout.errors import RolloutError
from rollout.model import env_grid_offsets, load_model, quat_to_matrix, wxyz_to_xyzw
from rollout.model.errors import ModelError

if TYPE_CHECKING:
    import mujoco

GL_BACKENDS = ("osmesa", "egl", "glfw")

_WORLD_GROUP = 5  # visible world geoms: shown by the first pass only
_HIDDEN_GROUP = 4  # geoms MuJoCo's viewer would not show: never drawn
_PLANE = 0


class RenderError(RolloutError):
    """No usable OpenGL, a model the renderer cannot draw, or poses that do not fit the model."""


class StateLike(Protocol):
    """What `FrameRenderer.render` reads from a `rollout_msgs/State` (or anything shaped like it)."""

    body_poses: Any
    num_envs: int
    num_bodies: int
    step: int


# ----------------------------------------------------------------------------- GL


def gl_backends(environ: Mapping[str, str] | None = None) -> list[str]:
    """GL backends to try, in order: the user's ``MUJOCO_GL``, else [glfw when a display,] osmesa, egl."""
    env = os.environ if environ is None else environ
    user = env.get("MUJOCO_GL", "").strip().lower()
    if user:
        if user in ("enable", "enabled", "on", "true", "1"):
            return ["glfw"]
        if user in ("disable", "disabled", "off", "false", "0"):
            raise RenderError(f"rendering is disabled (MUJOCO_GL={user}); set MUJOCO_GL=osmesa or egl")
        if user not in GL_BACKENDS:
            raise RenderError(f"unknown MUJOCO_GL={user!r}; use one of: {', '.join(GL_BACKENDS)}")
        return [user]
    pyopengl = env.get("PYOPENGL_PLATFORM", "").strip().lower()
    order = ["osmesa", "egl"]
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        order.insert(0, "glfw")
    if pyopengl in order:  # PyOpenGL can serve only the platform already chosen for it
        order.remove(pyopengl)
        order.insert(0, pyopengl)
    return order


_LIBRARY_HINT = {
    "osmesa": ("OSMesa", "libOSMesa not found (Debian package libosmesa6)"),
    "egl": ("EGL", "libEGL not found (Debian packages libegl1 libegl-mesa0)"),
}


def _open_gl_context(backend: str, width: int, height: int) -> Any:
    """A current GL context from mujoco's own wrappers; raises with a one-line reason."""
    if backend in _LIBRARY_HINT:
        lib, hint = _LIBRARY_HINT[backend]
        if ctypes.util.find_library(lib) is None:
            raise RuntimeError(hint)
    pyopengl = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    if backend in ("osmesa", "egl") and pyopengl and pyopengl != backend and "OpenGL" in sys.modules:
        raise RuntimeError(f"PyOpenGL is already set up for PYOPENGL_PLATFORM={pyopengl}")
    if backend == "osmesa":
        from mujoco.osmesa import GLContext
    elif backend == "egl":
        from mujoco.egl import GLContext
    else:
        from mujoco.glfw import GLContext
    # our close() frees the context; its own __del__ would run during interpreter teardown and fail noisily
    owned = type(f"Owned{GLContext.__name__}", (GLContext,), {"__del__": lambda self: None})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glfw warns on every call without a display; we report once
        ctx = owned(width, height)
    if backend == "glfw" and not getattr(ctx, "_context", None):
        # glfw hands back a null window without a display; MjrContext on it would poison MuJoCo's GL state
        raise RuntimeError("no window could be created (no display?)")
    ctx.make_current()
    return ctx


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


# ----------------------------------------------------------------------------- model


def _render_model(
    model: str | mujoco.MjModel, model_format: str, assets: dict[str, bytes] | None, width: int, height: int
) -> mujoco.MjModel:
    """A private, render-ready copy of the model: a floor when it has none, a framebuffer of the right size."""
    import copy

    import mujoco

    try:
        m = copy.copy(model) if isinstance(model, mujoco.MjModel) else load_model(model, model_format, assets=assets)  # type: ignore[arg-type]
    except ModelError as exc:
        reason = str(exc)
        if "opening file" in reason.lower() or "resource not found" in reason.lower():
            reason += " (the model's mesh or texture files are not here; pass assets= or render where they are)"
        raise RenderError(reason) from None
    world_planes = (m.geom_bodyid == 0) & (m.geom_type == _PLANE)
    if not world_planes.any() and isinstance(model, str):
        m = _with_floor(model, model_format, assets)
    m.vis.global_.offwidth = max(int(m.vis.global_.offwidth), width)
    m.vis.global_.offheight = max(int(m.vis.global_.offheight), height)
    m.vis.quality.offsamples = 0  # MSAA costs ~10x on a software rasteriser
    return m


def _coarser_primitives(m: mujoco.MjModel) -> None:
    """Fewer facets on spheres and capsules: robots in a grid are small, and a software rasteriser
    pays per triangle (16 envs: 27 -> 51 fps at 640x480, no visible difference)."""
    m.vis.quality.numslices = min(int(m.vis.quality.numslices), 16)
    m.vis.quality.numstacks = min(int(m.vis.quality.numstacks), 8)


def _with_floor(model_text: str, model_format: str, assets: dict[str, bytes] | None) -> mujoco.MjModel:
    """The model with a checker floor at z = 0 and a light overhead (URDF robots come without either)."""
    import mujoco

    spec = mujoco.MjSpec.from_string(model_text, assets=assets or {})
    if model_format == "urdf":
        # URDF: the parser drops added textures and materials; go through the equivalent MJCF
        spec.compile()
        spec = mujoco.MjSpec.from_string(spec.to_xml(), assets=assets or {})
    spec.add_texture(
        name="rollout_floor",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.25, 0.3, 0.35],
        rgb2=[0.15, 0.2, 0.25],
        width=256,
        height=256,
    )
    mat = spec.add_material(name="rollout_floor", texrepeat=[1, 1], texuniform=True)
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "rollout_floor"
    # a colliding geom on purpose: URDF compiling discards visual-only geoms (discardvisual)
    spec.worldbody.add_geom(name="rollout_floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05], material="rollout_floor")
    spec.worldbody.add_light(name="rollout_light", pos=[0, 0, 5], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    try:
        return spec.compile()
    except ValueError as exc:
        raise RenderError(f"cannot add a floor to the robot model: {_one_line(exc)}") from None


def body_poses_of(state: StateLike | np.ndarray) -> np.ndarray:
    """Body poses [N, B, 7] from a State (flat ``body_poses`` with ``num_envs``/``num_bodies``) or an array."""
    if isinstance(state, np.ndarray):
        poses = state
    else:
        flat = np.asarray(state.body_poses)
        n, b = int(state.num_envs), int(state.num_bodies)
        if flat.size != n * b * 7:
            raise RenderError(f"State.body_poses has {flat.size} values, expected num_envs*num_bodies*7 = {n * b * 7}")
        poses = flat.reshape(n, b, 7)
    if poses.ndim != 3 or poses.shape[2] != 7:
        raise RenderError(f"body poses have shape {tuple(poses.shape)}; expected [num_envs, num_bodies, 7]")
    return poses


# ----------------------------------------------------------------------------- renderer


_LIVE: weakref.WeakSet[FrameRenderer] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # GL contexts must be freed while PyOpenGL is still importable, i.e. before interpreter teardown
    for renderer in list(_LIVE):
        renderer.close()


class FrameRenderer:
    """Renders RGB frames [height, width, 3] uint8 of one or several envs of a recorded rollout.

    model: ``RobotDescription.model`` (MJCF or URDF text, see `model_format`) or a compiled MjModel.
    preset: camera preset (`rollout.cameras.CAMERA_PRESETS`), case-insensitive.
    envs: ids of the envs to show; several are drawn on one square grid.
    spacing: ``RobotDescription.env_spacing``. > 0: the envs share one origin and the shown ones are
      laid out ``spacing`` metres apart (row-major, `env_grid_offsets` of ``len(envs)``);
      0: poses are already laid out in the world and are drawn where they are.
    overlay: burn ``step`` and ``reward`` (see `render`) into the frame.
    backend: force a GL backend (osmesa, egl, glfw) instead of `gl_backends`.
    The camera looks at the centre of the shown envs (``follow``: the first shown env's base, from
    behind along -x), tracks it in x and y, keeps the height of the first frame, fits its distance
    so that a sphere around every shown robot is in the picture, and only ever zooms out.
    Not thread-safe; render from one thread at a time.
    """

    def __init__(
        self,
        model: str | mujoco.MjModel,
        *,
        model_format: str = "mjcf",
        assets: dict[str, bytes] | None = None,
        width: int = 640,
        height: int = 480,
        preset: str = "side",
        envs: Sequence[int] = (0,),
        spacing: float = 0.0,
        overlay: bool = False,
        backend: str | None = None,
    ) -> None:
        self._gl: Any = None
        self._con: Any = None
        self._preset = parse_preset(preset)  # before any expensive work: a typo fails fast
        if width <= 0 or height <= 0:
            raise RenderError(f"frame size must be positive, got {width}x{height}")
        self._envs = np.asarray([int(k) for k in envs], dtype=np.intp)
        if self._envs.size == 0:
            raise RenderError("no envs to render; give at least one env id")
        if (self._envs < 0).any():
            raise RenderError(f"env ids must be >= 0, got {self._envs.tolist()}")
        self.width, self.height = int(width), int(height)
        self.overlay = overlay

        import mujoco

        m = _render_model(model, model_format, assets, self.width, self.height)
        if len(self._envs) > 1:
            _coarser_primitives(m)
        self._m = m
        self._d = mujoco.MjData(m)
        mujoco.mj_forward(m, self._d)  # world geoms and world lights at their fixed poses (qpos0)

        # which geoms are drawn (as MuJoCo's viewer: groups 0-2, unless the model uses none of them)
        group = np.clip(m.geom_group, 0, 5)
        shown = group < 3 if (group < 3).any() else np.ones(m.ngeom, bool)
        world = m.geom_bodyid == 0
        m.geom_group[:] = np.where(~shown, _HIDDEN_GROUP, np.where(world, _WORLD_GROUP, 0))
        self._opt_first = self._options(world_too=True)
        self._opt_extra = self._options(world_too=False)

        self._nbody = m.nbody - 1
        if self._nbody == 0:
            raise RenderError("the robot model has no bodies besides the world; there is nothing to pose")
        geoms = np.flatnonzero(~world & shown)
        self._geoms = geoms
        self._geom_body = (m.geom_bodyid[geoms] - 1).astype(np.intp)
        self._geom_pos = m.geom_pos[geoms].astype(np.float64)
        self._geom_rot = quat_to_matrix(wxyz_to_xyzw(m.geom_quat[geoms]))  # [G, 3, 3]
        lights = np.flatnonzero(m.light_bodyid > 0)
        self._lights = lights
        self._light_body = (m.light_bodyid[lights] - 1).astype(np.intp)

        self._offsets = env_grid_offsets(len(self._envs), float(spacing)).astype(np.float64)
        self._robot_radius, self._mid_height = self._robot_size()
        self._distance = 0.0
        self._target_z: float | None = None
        self._num_envs = 0
        self._pose: CameraPose | None = None
        self._cam = mujoco.MjvCamera()
        self._pert = mujoco.MjvPerturb()
        self._fovy = float(m.vis.global_.fovy) or DEFAULT_FOVY

        self._scene = mujoco.MjvScene(m, maxgeom=int(m.ngeom + len(geoms) * len(self._envs) + 100))
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._rect = mujoco.MjrRect(0, 0, self.width, self.height)
        self._rgb = np.empty((self.height, self.width, 3), np.uint8)
        self.backend = self._open_context(backend)
        self._text = _TextOverlay(self.height) if overlay else None

    # ------------------------------------------------------------------ set-up helpers

    def _options(self, *, world_too: bool) -> mujoco.MjvOption:
        import mujoco

        opt = mujoco.MjvOption()
        opt.geomgroup[:] = 0
        opt.geomgroup[0] = 1
        opt.geomgroup[_WORLD_GROUP] = int(world_too)
        opt.sitegroup[:] = 0  # sites, tendons, skins, flexes follow bodies we do not pose: hide them
        opt.tendongroup[:] = 0
        opt.skingroup[:] = 0
        opt.flexgroup[:] = 0
        for flag in ("mjVIS_TENDON", "mjVIS_RANGEFINDER", "mjVIS_SKIN", "mjVIS_FLEXSKIN", "mjVIS_FLEXFACE"):
            opt.flags[getattr(mujoco.mjtVisFlag, flag)] = 0
        opt.flags[mujoco.mjtVisFlag.mjVIS_STATIC] = 1
        return opt

    def _robot_size(self) -> tuple[float, float]:
        """(radius of the robot's bounding sphere, height of its middle above the base) at qpos0."""
        m, d = self._m, self._d
        base = d.xpos[1]
        if len(self._geoms):
            centres = d.geom_xpos[self._geoms]
            bound = m.geom_rbound[self._geoms]
            # planes and meshes can report rbound 0; fall back to a hand-sized radius
            bound = np.where(bound > 0, bound, 0.05)
        else:
            centres, bound = d.xpos[1:], np.full(self._nbody, 0.05)
        low = (centres[:, 2] - bound).min()
        high = (centres[:, 2] + bound).max()
        mid = np.array([base[0], base[1], (low + high) / 2])
        radius = float((np.linalg.norm(centres - mid, axis=1) + bound).max())
        return max(radius, 0.1), float(mid[2] - base[2])

    def _open_context(self, backend: str | None) -> str:
        import mujoco

        if backend is not None and backend not in GL_BACKENDS:
            raise RenderError(f"unknown GL backend {backend!r}; use one of: {', '.join(GL_BACKENDS)}")
        reasons = []
        for name in [backend] if backend else gl_backends():
            try:
                gl = _open_gl_context(name, self.width, self.height)
            except Exception as exc:  # every backend fails in its own way; report them all in one line
                reasons.append(f"{name}: {_one_line(exc)}")
                continue
            try:
                con = mujoco.MjrContext(self._m, mujoco.mjtFontScale.mjFONTSCALE_150)
                mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
            except Exception as exc:
                gl.free()
                reasons.append(f"{name}: {_one_line(exc)}")
                continue
            self._gl, self._con = gl, con
            _LIVE.add(self)
            return name
        raise RenderError(
            "no OpenGL for offscreen rendering (" + "; ".join(reasons) + "); install libosmesa6 or set MUJOCO_GL=egl"
        )

    # ------------------------------------------------------------------ camera

    @property
    def preset(self) -> str:
        return self._preset

    @preset.setter
    def preset(self, name: str) -> None:
        self._preset = parse_preset(name)
        self._distance = 0.0  # each view fits its own distance

    @property
    def camera(self) -> CameraPose | None:
        """The camera of the last rendered frame (None before the first)."""
        return self._pose

    def reset_camera(self) -> None:
        """Forget the camera's height and zoom; the next frame fits them afresh (e.g. after a seek)."""
        self._distance = 0.0
        self._target_z = None

    def _update_camera(self, base: np.ndarray) -> CameraPose:
        """base: [E, 3] world positions of the shown envs' bases (grid offsets applied)."""
        if self._target_z is None:
            self._target_z = float(base[:, 2].mean()) + self._mid_height
        if self._preset == "follow":
            centres = base[:1, :2]
            radius = 1.5 * self._robot_radius  # some ground around the robot shows how it moves
        else:
            centres = base[:, :2]
            radius = self._robot_radius
        low, high = centres.min(axis=0), centres.max(axis=0)
        target = np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, self._target_z])
        spheres = np.column_stack([centres, np.full(len(centres), self._target_z)])
        pose = camera_pose(
            self._preset,
            target,
            radius,
            centres=spheres,
            fovy=self._fovy,
            aspect=self.width / self.height,
            min_distance=self._distance,  # zoom out when envs spread, never in: no pumping
        )
        self._distance = pose.distance
        return pose

    # ------------------------------------------------------------------ rendering

    def render(
        self,
        state: StateLike | np.ndarray,
        *,
        step: int | None = None,
        reward: float | np.ndarray | None = None,
    ) -> np.ndarray:
        """One frame [height, width, 3] uint8 (a new array) of the shown envs.

        state: a `rollout_msgs/State` (its ``step`` is used when `step` is None) or body poses
          [N, B, 7] (x, y, z, qx, qy, qz, qw, world frame) of all N envs, B = the model's bodies
          without the world body, in model order.
        reward: with ``overlay``: a number shown under the step, or one per env ([N], or one per
          shown env) drawn above each shown env.
        """
        import mujoco

        if self._con is None:
            raise RenderError("render() called after close()")
        poses = body_poses_of(state)
        if step is None and not isinstance(state, np.ndarray):
            step = int(state.step)
        n, b = poses.shape[:2]
        if b != self._nbody:
            raise RenderError(f"the poses have {b} bodies but the robot model has {self._nbody}; wrong model for this recording?")
        if self._envs.max() >= n:
            raise RenderError(f"env {int(self._envs.max())} is not in the recording (it has {n} envs)")

        self._num_envs = n
        sel = poses[self._envs].astype(np.float64)  # [E, B, 7]
        quat = sel[..., 3:7]
        quat /= np.linalg.norm(quat, axis=-1, keepdims=True).clip(1e-12)  # float32 on the wire
        pos = sel[..., 0:3] + self._offsets[:, None, :]
        rot = quat_to_matrix(quat)  # [E, B, 3, 3]
        grot = rot[:, self._geom_body]  # [E, G, 3, 3]
        gpos = pos[:, self._geom_body] + np.einsum("egij,gj->egi", grot, self._geom_pos)
        gmat = (grot @ self._geom_rot).reshape(len(self._envs), -1, 9)

        d = self._d
        if len(self._lights):  # lights carried by the robot follow the first shown env
            lrot = rot[0, self._light_body]
            d.light_xpos[self._lights] = pos[0, self._light_body] + np.einsum("lij,lj->li", lrot, self._m.light_pos[self._lights])
            d.light_xdir[self._lights] = np.einsum("lij,lj->li", lrot, self._m.light_dir[self._lights])

        self._pose = self._update_camera(pos[:, 0])
        to_mjv_camera(self._pose, self._cam)
        all_cats = int(mujoco.mjtCatBit.mjCAT_ALL)
        bodies = int(mujoco.mjtCatBit.mjCAT_STATIC) | int(mujoco.mjtCatBit.mjCAT_DYNAMIC)
        for e in range(len(self._envs)):  # one C call per shown env; the maths above is whole-array
            d.geom_xpos[self._geoms] = gpos[e]
            d.geom_xmat[self._geoms] = gmat[e]
            if e == 0:
                mujoco.mjv_updateScene(self._m, d, self._opt_first, self._pert, self._cam, all_cats, self._scene)
            else:
                mujoco.mjv_addGeoms(self._m, d, self._opt_extra, self._pert, bodies, self._scene)

        self._gl.make_current()
        mujoco.mjr_render(self._rect, self._scene, self._con)
        mujoco.mjr_readPixels(self._rgb, None, self._rect, self._con)
        frame = np.ascontiguousarray(self._rgb[::-1])  # GL rows run bottom-up
        if self._text is not None:
            self._draw_overlay(frame, pos, step, reward)
        return frame

    def _draw_overlay(self, frame: np.ndarray, pos: np.ndarray, step: int | None, reward: Any) -> None:
        assert self._text is not None and self._pose is not None
        lines = []
        if step is not None:
            lines.append(f"step {step}")
        per_env = reward is not None and np.ndim(reward) > 0
        if reward is not None and not per_env:
            lines.append(f"reward {float(reward):.2f}")
        if lines:
            self._text.draw(frame, "\n".join(lines), (8, 8), anchor="la")
        if per_env:
            values = np.asarray(reward, dtype=np.float64).reshape(-1)
            if values.size == self._num_envs:
                values = values[self._envs]
            elif values.size != len(self._envs):
                raise RenderError(
                    f"reward has {values.size} values; expected one per env ({self._num_envs}) or per shown env ({len(self._envs)})"
                )
            heads = pos.max(axis=1)  # above the highest body of each env
            heads[:, 0:2] = pos[:, 0, 0:2]
            heads[:, 2] += 0.15
            pixels, visible = project_points(heads, self._pose, self.width, self.height, fovy=self._fovy)
            for (x, y), ok, value in zip(pixels.tolist(), visible.tolist(), values.tolist()):
                if ok:
                    self._text.draw(frame, f"{value:.2f}", (x, y), anchor="md")

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Free the GL context; safe to call twice."""
        con, gl = self._con, self._gl
        self._con = self._gl = None
        if con is not None:
            try:
                gl.make_current()
                con.free()
            except Exception:
                pass
        if gl is not None:
            gl.free()

    def __enter__(self) -> FrameRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class _TextOverlay:
    """Light text on a darkened box, drawn with Pillow on just the pixels it covers."""

    def __init__(self, frame_height: int) -> None:
        from PIL import ImageFont

        self.size = max(12, round(frame_height / 28))
        self.font = ImageFont.load_default(size=self.size)
        self.pad = max(3, self.size // 4)

    def draw(self, frame: np.ndarray, text: str, xy: tuple[float, float], *, anchor: str) -> None:
        """anchor: "la" puts the box's top-left at xy, "md" its bottom-centre."""
        from PIL import Image, ImageDraw

        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        left, top, right, bottom = probe.multiline_textbbox((0, 0), text, font=self.font)
        w, h = right + 2 * self.pad, bottom + 2 * self.pad
        x, y = xy
        if anchor == "md":
            x, y = x - w / 2, y - h
        x0, y0 = int(round(x)), int(round(y))
        fh, fw = frame.shape[:2]
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + w, fw), min(y0 + h, fh)
        if cx0 >= cx1 or cy0 >= cy1:
            return
        mask = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask).multiline_text((self.pad, self.pad), text, font=self.font, fill=255)
        alpha = np.asarray(mask, dtype=np.float32)[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None] / 255.0
        patch = frame[cy0:cy1, cx0:cx1].astype(np.float32) * 0.45  # darken the box for contrast
        frame[cy0:cy1, cx0:cx1] = (patch * (1 - alpha) + 255.0 * alpha).astype(np.uint8)


def draw_label(frame: np.ndarray, text: str, xy: tuple[float, float] = (8, 8)) -> None:
    """Burn `text` into `frame` [H, W, 3] uint8 in place, top-left at `xy`, drawn as the overlay of
    `FrameRenderer` draws its step line (for frames that come from elsewhere, e.g. a sim's camera)."""
    _text_overlay(int(frame.shape[0])).draw(frame, text, xy, anchor="la")


@functools.lru_cache(maxsize=4)
def _text_overlay(frame_height: int) -> _TextOverlay:
    return _TextOverlay(frame_height)
