"""Camera presets shared by the video renderer (MuJoCo) and the web viewer (viser).

    from rollout.cameras import camera_pose, parse_preset
    pose = camera_pose("side", target=[0, 0, 0.8], extent=1.5)
    pose.eye, pose.look_at, pose.up          # viser: client.camera.position / look_at / up_direction
    to_mjv_camera(pose)                      # MuJoCo: a free MjvCamera showing the same view

World frame is z up, robots face +x (MuJoCo and ROS convention):
- ``top``: straight down from above; image right is +x, image up is +y.
- ``side``: from -y, nearly level, looking along +y (a robot walking along +x crosses left to right).
- ``front``: from +x and above, looking along -x and down at the robots' fronts.
- ``follow``: behind (-x, or behind the given heading) and above the followed robot's base, closer
  in; the caller moves ``target`` with the robot every frame.

Pure functions, no mujoco import at module load (only `to_mjv_camera` needs it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

import numpy as np

from rollout.errors import ParameterError

if TYPE_CHECKING:
    import mujoco

CameraPreset = Literal["top", "side", "front", "follow"]
CAMERA_PRESETS: tuple[CameraPreset, ...] = ("top", "side", "front", "follow")

DEFAULT_FOVY = 45.0
"""Vertical field of view in degrees (MuJoCo's default `visual/global/fovy`)."""

# preset -> (azimuth, elevation) in MuJoCo's free-camera convention (degrees): the camera looks along
# (cos el cos az, cos el sin az, sin el), so azimuth 90 looks along +y and elevation -90 straight down.
# Side is nearly level (a profile of the gait) and Front looks down more steeply, so that no two
# presets show a grid of envs from similar angles.
_VIEWS: dict[str, tuple[float, float]] = {
    "top": (90.0, -90.0),
    "side": (90.0, -5.0),
    "front": (180.0, -30.0),
    "follow": (0.0, -20.0),
}
_MARGIN = 1.15  # some air around the fitted sphere


class UnknownPresetError(ParameterError):
    """A camera preset name that is not one of `CAMERA_PRESETS`."""

    def __init__(self, name: object) -> None:
        super().__init__(f"unknown camera preset {name!r}; choose one of: {', '.join(CAMERA_PRESETS)}")
        self.name = name


def parse_preset(name: str) -> CameraPreset:
    """The preset called `name` (case and surrounding spaces ignored); `UnknownPresetError` otherwise."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in CAMERA_PRESETS:
        raise UnknownPresetError(name)
    return cast(CameraPreset, key)


@dataclass(frozen=True, eq=False)
class CameraPose:
    """One camera view in world coordinates (metres, z up), plus the same view as MuJoCo orbit parameters."""

    eye: np.ndarray
    """[3] float64 camera position."""
    look_at: np.ndarray
    """[3] float64 point at the image centre."""
    up: np.ndarray
    """[3] float64 unit vector pointing to the top of the image (orthogonal to the view direction)."""
    distance: float
    """|eye - look_at|, metres."""
    azimuth: float
    """Degrees; MuJoCo `MjvCamera.azimuth`."""
    elevation: float
    """Degrees, negative looks down; MuJoCo `MjvCamera.elevation`."""

    @property
    def forward(self) -> np.ndarray:
        """[3] unit view direction."""
        return _forward(self.azimuth, self.elevation)


def _forward(azimuth: float, elevation: float) -> np.ndarray:
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def fit_distance(extent: float, *, fovy: float = DEFAULT_FOVY, aspect: float = 4 / 3) -> float:
    """Distance at which a sphere of radius `extent` fills the view (the narrower of the two fields of view)."""
    half_v = math.radians(fovy) / 2
    half = min(half_v, math.atan(math.tan(half_v) * aspect))
    return max(float(extent), 1e-3) * _MARGIN / math.sin(half)


def _fit_spheres(
    centres: np.ndarray, radius: float, look_at: np.ndarray, azimuth: float, elevation: float, fovy: float, aspect: float
) -> float:
    """Smallest distance from `look_at` at which every sphere (centres [K, 3], one radius) is inside the frustum.

    A sphere is inside when its centre is at least its radius from each side plane of the frustum;
    for a plane at half-angle h that is D >= (r + cos h * |offset|) / sin h - depth_offset.
    """
    fwd = _forward(azimuth, elevation)
    az, el = math.radians(azimuth), math.radians(elevation)
    up = np.array([-math.sin(el) * math.cos(az), -math.sin(el) * math.sin(az), math.cos(el)])
    right = np.cross(fwd, up)
    rel = np.asarray(centres, dtype=np.float64).reshape(-1, 3) - look_at
    depth = rel @ fwd
    r = max(float(radius), 1e-3) * _MARGIN
    half_v = math.radians(fovy) / 2
    half_h = math.atan(math.tan(half_v) * aspect)
    need_h = (r + math.cos(half_h) * np.abs(rel @ right)) / math.sin(half_h) - depth
    need_v = (r + math.cos(half_v) * np.abs(rel @ up)) / math.sin(half_v) - depth
    return float(max(need_h.max(), need_v.max(), r))


def camera_pose(
    preset: str,
    target: np.ndarray | tuple[float, float, float],
    extent: float,
    *,
    centres: np.ndarray | None = None,
    fovy: float = DEFAULT_FOVY,
    aspect: float = 4 / 3,
    yaw: float = 0.0,
    min_distance: float = 0.0,
) -> CameraPose:
    """The view `preset` of a scene around `target` with everything that must be seen in the picture.

    target: [3] world point to look at: the centre of the shown envs, or the followed robot's base.
    extent: radius in metres of the sphere around `target` that must stay in view; with `centres`
      ([K, 3], e.g. one per shown env), the radius of a sphere around each centre instead, and the
      distance is fitted to exactly those spheres (tighter than one sphere around a whole grid).
    fovy: vertical field of view in degrees; aspect: image width / height.
    yaw: heading in radians for ``follow`` (0: behind along -x); ignored by the other presets.
    min_distance: never closer than this (a caller that must not zoom in passes its last distance).
    Raises `UnknownPresetError` for an unknown preset.
    """
    name = parse_preset(preset)
    azimuth, elevation = _VIEWS[name]
    if name == "follow":
        azimuth += math.degrees(yaw)
    look_at = np.asarray(target, dtype=np.float64).reshape(3).copy()
    if centres is None:
        distance = fit_distance(extent, fovy=fovy, aspect=aspect)
    else:
        distance = _fit_spheres(centres, extent, look_at, azimuth, elevation, fovy, aspect)
    distance = max(distance, float(min_distance))
    fwd = _forward(azimuth, elevation)
    az, el = math.radians(azimuth), math.radians(elevation)
    up = np.array([-math.sin(el) * math.cos(az), -math.sin(el) * math.sin(az), math.cos(el)])
    return CameraPose(
        eye=look_at - distance * fwd,
        look_at=look_at,
        up=up,
        distance=distance,
        azimuth=azimuth,
        elevation=elevation,
    )


def to_mjv_camera(pose: CameraPose, camera: mujoco.MjvCamera | None = None) -> mujoco.MjvCamera:
    """`pose` as a MuJoCo free camera (written into `camera` when given, else a new one)."""
    import mujoco

    cam = camera if camera is not None else mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.fixedcamid = -1
    cam.trackbodyid = -1
    cam.lookat[:] = pose.look_at
    cam.distance = pose.distance
    cam.azimuth = pose.azimuth
    cam.elevation = pose.elevation
    return cam


def project_points(
    points: np.ndarray, pose: CameraPose, width: int, height: int, *, fovy: float = DEFAULT_FOVY
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates of world points seen through `pose` (pinhole, square pixels).

    points: [..., 3]. Returns (pixels [..., 2] float64 as (column, row) from the top-left corner,
    in_front [...] bool: the point is in front of the camera).
    """
    p = np.asarray(points, dtype=np.float64) - pose.eye
    fwd = pose.forward
    right = np.cross(fwd, pose.up)
    depth = p @ fwd
    focal = (height / 2) / math.tan(math.radians(fovy) / 2)
    safe = np.where(depth > 1e-9, depth, 1e-9)
    col = width / 2 + focal * (p @ right) / safe
    row = height / 2 - focal * (p @ pose.up) / safe
    return np.stack([col, row], axis=-1), depth > 1e-9
