"""Visual geometry of a recorded robot model, as one triangle mesh per body in the body's frame.

    from rollout.model import body_meshes, posed_vertices
    meshes = body_meshes(description.model, description.model_format)   # once
    world = posed_vertices(meshes, body_poses)                           # [N, V_b, 3] per body

The model text (`RobotDescription.model`, MJCF or URDF) is compiled by MuJoCo, so what is drawn is
exactly what was simulated: sizes from `fromto`, defaults and mesh scaling are already resolved.

Body order (the contract with the sim). The sim publishes `State.body_poses[:, b]` for MuJoCo
bodies `b + 1` for `b` in `0 .. nbody - 2`, in model order, world body (id 0) excluded, named
`model.body(i).name` or `body_<i>` when unnamed (`robot_body_names`; the sim's side is
`rollout.sim.mjlayout.MjLayout`, and a test checks the two agree). `body_meshes` returns one
`BodyMesh` per such body in the same order, so `meshes[b]` always pairs with `body_poses[:, b]`;
a body without visual geometry gets an empty mesh rather than being dropped.

Which geoms are drawn (MuJoCo has no separate visual/collision lists, so decide like its viewer):
- planes, height fields and SDFs are not meshed; geoms with alpha 0 are invisible;
- groups 3-5 are hidden, as in MuJoCo's default viewer (menagerie models put collision geoms in
  group 3), unless no geom of the model is in groups 0-2;
- when the model has visual-only geoms (contype = conaffinity = 0), a body's colliding geoms are
  taken to be its collision shapes and dropped, unless the body has no visual-only geom.
Colour: `geom_rgba`, or the material's rgba when the geom has a material and MuJoCo's default geom
rgba (0.5 0.5 0.5 1), as MuJoCo itself resolves it. Textures are ignored.

The world body's geoms are not a robot body: `static_geometry` returns them, planes separately
(for the viewer's ground) and everything else as one world-frame mesh.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from rollout.model import primitives
from rollout.model.errors import ModelError

if TYPE_CHECKING:
    import mujoco
    import trimesh

ModelFormat = Literal["mjcf", "urdf"]

# mjtGeom values; literal so that the table below needs no mujoco import at module load
_PLANE, _HFIELD, _SPHERE, _CAPSULE, _ELLIPSOID, _CYLINDER, _BOX, _MESH, _SDF = range(9)
_DRAWABLE = (_SPHERE, _CAPSULE, _ELLIPSOID, _CYLINDER, _BOX, _MESH)
_DEFAULT_GEOM_RGBA = np.array([0.5, 0.5, 0.5, 1.0], dtype=np.float32)
_FALLBACK_RGBA = np.array([0.5, 0.5, 0.5, 1.0], dtype=np.float32)
_VISIBLE_GROUPS = 3  # MuJoCo's default viewer shows geom groups 0, 1, 2


@dataclass(frozen=True, eq=False)
class BodyMesh:
    """All visual geoms of one body merged into one triangle mesh in the body frame."""

    name: str
    """Body name as the sim publishes it (`body_<id>` when the model leaves it unnamed)."""
    body_id: int
    """MuJoCo body id (1-based for robot bodies; 0 for the world's static mesh)."""
    vertices: np.ndarray
    """[V, 3] float32, metres, body frame."""
    faces: np.ndarray
    """[F, 3] int32 indices into `vertices`, counter-clockwise seen from outside."""
    rgba: np.ndarray
    """[4] float32 in 0..1: the colour of the body's first drawn geom (one colour per batched mesh)."""
    vertex_rgba: np.ndarray
    """[V, 4] uint8: per-vertex colour, each geom's own."""
    geom_ids: tuple[int, ...] = ()
    """MuJoCo ids of the geoms merged here, in order."""
    geom_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    """[G + 1] int64: vertices of geom `geom_ids[g]` are `vertices[geom_offsets[g]:geom_offsets[g + 1]]`."""

    @property
    def is_empty(self) -> bool:
        return len(self.faces) == 0

    def to_trimesh(self) -> trimesh.Trimesh:
        """The mesh as a `trimesh.Trimesh` with vertex colours (imports trimesh, ~0.6 s the first time)."""
        import trimesh

        return trimesh.Trimesh(
            vertices=self.vertices, faces=self.faces, vertex_colors=self.vertex_rgba, process=False
        )


@dataclass(frozen=True, eq=False)
class GroundPlane:
    """A MuJoCo plane geom of the world body, for drawing the ground."""

    name: str
    position: np.ndarray
    """[3] float32, world frame."""
    quat_xyzw: np.ndarray
    """[4] float32; the plane's normal is its local +z."""
    half_size: np.ndarray
    """[2] float32 half extents along local x, y; 0 means infinite (draw a large finite one)."""
    rgba: np.ndarray
    """[4] float32."""


@dataclass(frozen=True, eq=False)
class StaticGeometry:
    """Geometry attached to the world body: never moves, not part of `State.body_poses`."""

    planes: list[GroundPlane]
    mesh: BodyMesh
    """Every other drawable world geom, merged, in the world frame (may be empty)."""


# ----------------------------------------------------------------------------- compiling


def load_model(
    model: str | mujoco.MjModel, model_format: ModelFormat = "mjcf", *, assets: dict[str, bytes] | None = None
) -> mujoco.MjModel:
    """Compile model text with MuJoCo (an `MjModel` passes through).

    `assets` maps file names used by the model (meshes, textures) to their bytes, for model text
    whose files are not on disk relative to the working directory.
    Raises `ModelError` with MuJoCo's one-line reason when the model does not compile.
    """
    import mujoco

    if isinstance(model, mujoco.MjModel):
        return model
    if model_format not in ("mjcf", "urdf"):
        raise ModelError(f"unknown model format {model_format!r}; expected 'mjcf' or 'urdf'")
    if not model.strip():
        raise ModelError("the robot model text is empty")
    try:
        return mujoco.MjModel.from_xml_string(model, assets or {})
    except ValueError as exc:  # MuJoCo reports every compile/parse error as ValueError
        reason = " ".join(str(exc).split())
        raise ModelError(f"cannot compile the {model_format.upper()} robot model: {reason}") from None


def robot_body_names(model: mujoco.MjModel) -> list[str]:
    """Names of bodies 1 .. nbody-1, the order of `State.body_poses`; `body_<id>` when unnamed."""
    return [model.body(i).name or f"body_{i}" for i in range(1, model.nbody)]


def robot_body_parents(model: mujoco.MjModel) -> list[int]:
    """For each robot body, the index of its parent in the same list, or -1 when it hangs off the world."""
    return [int(model.body_parentid[i]) - 1 for i in range(1, model.nbody)]


# ----------------------------------------------------------------------------- meshes


def body_meshes(
    model: str | mujoco.MjModel,
    model_format: ModelFormat = "mjcf",
    *,
    assets: dict[str, bytes] | None = None,
    segments: int = 16,
) -> list[BodyMesh]:
    """One `BodyMesh` per robot body (bodies 1 .. nbody-1, in `State.body_poses` order).

    `segments` is the number of sides of round primitives (rounded up to a multiple of 4).
    Raises `ModelError` when the model does not compile.
    """
    m = load_model(model, model_format, assets=assets)
    segments = max(4, 4 * math.ceil(segments / 4))
    chosen = visual_geoms(m)
    names = robot_body_names(m)
    return [_merge(m, chosen.get(b, []), names[b - 1], b, segments, world=False) for b in range(1, m.nbody)]


def static_geometry(
    model: str | mujoco.MjModel,
    model_format: ModelFormat = "mjcf",
    *,
    assets: dict[str, bytes] | None = None,
    segments: int = 16,
) -> StaticGeometry:
    """Geometry of the world body: its planes, and its other visual geoms merged in the world frame."""
    m = load_model(model, model_format, assets=assets)
    segments = max(4, 4 * math.ceil(segments / 4))
    world_geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] == 0 and m.geom_rgba[g, 3] > 0]
    planes = [
        GroundPlane(
            name=m.geom(g).name or f"geom_{g}",
            position=m.geom_pos[g].astype(np.float32),
            quat_xyzw=wxyz_to_xyzw(m.geom_quat[g]).astype(np.float32),
            half_size=m.geom_size[g, :2].astype(np.float32),
            rgba=geom_rgba(m, g),
        )
        for g in world_geoms
        if m.geom_type[g] == _PLANE
    ]
    chosen = visual_geoms(m).get(0, [])
    return StaticGeometry(planes=planes, mesh=_merge(m, chosen, "world", 0, segments, world=True))


def visual_geoms(m: mujoco.MjModel) -> dict[int, list[int]]:
    """Body id -> ids of the geoms to draw (rules in the module docstring); bodies with none are absent."""
    gtype = m.geom_type
    candidates = np.isin(gtype, _DRAWABLE) & (m.geom_rgba[:, 3] > 0)
    shown_groups = m.geom_group < _VISIBLE_GROUPS
    if (candidates & shown_groups).any():
        candidates &= shown_groups
    visual_only = candidates & (m.geom_contype == 0) & (m.geom_conaffinity == 0)
    separated = bool(visual_only.any())
    by_body: dict[int, list[int]] = {}
    for g in np.flatnonzero(candidates):
        by_body.setdefault(int(m.geom_bodyid[g]), []).append(int(g))
    if separated:
        for b, geoms in by_body.items():
            vis = [g for g in geoms if visual_only[g]]
            if vis:
                by_body[b] = vis
    return by_body


def geom_rgba(m: mujoco.MjModel, g: int) -> np.ndarray:
    """Colour [4] float32 of geom `g` as MuJoCo resolves it (geom rgba, or its material's)."""
    rgba = m.geom_rgba[g].astype(np.float32)
    mat = int(m.geom_matid[g])
    if mat >= 0 and np.allclose(rgba, _DEFAULT_GEOM_RGBA):
        rgba = m.mat_rgba[mat].astype(np.float32)
    return rgba


def geom_local_mesh(m: mujoco.MjModel, g: int, segments: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Mesh of geom `g` in its own frame: vertices [V, 3] float64, faces [F, 3] int32."""
    t = int(m.geom_type[g])
    size = m.geom_size[g]
    if t == _SPHERE:
        return primitives.sphere(float(size[0]), segments=segments)
    if t == _CAPSULE:
        return primitives.capsule(float(size[0]), float(size[1]), segments=segments)
    if t == _ELLIPSOID:
        return primitives.ellipsoid(size, segments=segments)
    if t == _CYLINDER:
        return primitives.cylinder(float(size[0]), float(size[1]), segments=segments)
    if t == _BOX:
        return primitives.box(size)
    if t == _MESH:
        mesh = int(m.geom_dataid[g])
        v0, nv = int(m.mesh_vertadr[mesh]), int(m.mesh_vertnum[mesh])
        f0, nf = int(m.mesh_faceadr[mesh]), int(m.mesh_facenum[mesh])
        return m.mesh_vert[v0 : v0 + nv].astype(np.float64), m.mesh_face[f0 : f0 + nf].astype(np.int32)
    raise ModelError(f"geom {g} of type {t} cannot be meshed")


def _merge(m: mujoco.MjModel, geoms: list[int], name: str, body_id: int, segments: int, *, world: bool) -> BodyMesh:
    verts, faces, colours, offsets = [], [], [], [0]
    n = 0
    for g in geoms:
        v, f = geom_local_mesh(m, g, segments)
        # geom frame -> body frame (the world body's frame is the world frame)
        v = v @ quat_to_matrix(wxyz_to_xyzw(m.geom_quat[g])).T + m.geom_pos[g]
        verts.append(v.astype(np.float32))
        faces.append(f + n)
        rgba = geom_rgba(m, g)
        colours.append(np.broadcast_to(np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8), (len(v), 4)))
        n += len(v)
        offsets.append(n)
    if not geoms:
        return BodyMesh(
            name=name,
            body_id=body_id,
            vertices=np.zeros((0, 3), np.float32),
            faces=np.zeros((0, 3), np.int32),
            rgba=_FALLBACK_RGBA.copy(),
            vertex_rgba=np.zeros((0, 4), np.uint8),
        )
    return BodyMesh(
        name=name,
        body_id=body_id,
        vertices=np.concatenate(verts),
        faces=np.concatenate(faces).astype(np.int32),
        rgba=geom_rgba(m, geoms[0]),
        vertex_rgba=np.concatenate(colours),
        geom_ids=tuple(geoms),
        geom_offsets=np.asarray(offsets, dtype=np.int64),
    )


# ----------------------------------------------------------------------------- poses


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    """MuJoCo/viser order to ROS order, any leading shape."""
    q = np.asarray(q)
    return np.concatenate([q[..., 1:4], q[..., :1]], axis=-1)


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    """ROS order to MuJoCo/viser order, any leading shape."""
    q = np.asarray(q)
    return np.concatenate([q[..., 3:4], q[..., :3]], axis=-1)


def quat_to_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] of unit quaternions [..., 4] (x, y, z, w). Not renormalised."""
    q = np.asarray(q_xyzw)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    rows = [
        [1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy)],
        [2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx)],
        [2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def transform_points(points: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """Points [V, 3] in a body frame moved by poses [..., 7] (x, y, z, qx, qy, qz, qw) -> [..., V, 3]."""
    poses = np.asarray(poses)
    rot = quat_to_matrix(poses[..., 3:7])  # [..., 3, 3]
    # p @ R^T as one broadcast matmul: ~5x faster than the equivalent einsum
    return np.asarray(points) @ np.swapaxes(rot, -1, -2) + poses[..., None, 0:3]


def posed_vertices(meshes: Sequence[BodyMesh], body_poses: np.ndarray) -> list[np.ndarray]:
    """World-frame vertices of every body for every env.

    body_poses: [N, B, 7] (x, y, z, qx, qy, qz, qw), B == len(meshes) (the `State.body_poses` layout).
    Returns B arrays, the b-th [N, V_b, 3] (same dtype promotion as the inputs).
    """
    body_poses = np.asarray(body_poses)
    if body_poses.shape[-2:] != (len(meshes), 7):
        raise ValueError(f"body_poses has shape {body_poses.shape}; expected [N, {len(meshes)}, 7]")
    return [transform_points(mesh.vertices, body_poses[..., b, :]) for b, mesh in enumerate(meshes)]


def posed_scene(meshes: Sequence[BodyMesh], body_poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One env's bodies merged into one world-frame mesh, e.g. to render or compare an image.

    body_poses: [B, 7]. Returns vertices [V, 3] float32, faces [F, 3] int32, vertex colours [V, 4] uint8.
    """
    parts = posed_vertices(meshes, np.asarray(body_poses)[None])
    verts, faces, colours, n = [], [], [], 0
    for mesh, v in zip(meshes, parts):
        verts.append(v[0].astype(np.float32))
        faces.append(mesh.faces + n)
        colours.append(mesh.vertex_rgba)
        n += len(mesh.vertices)
    return (
        np.concatenate(verts) if verts else np.zeros((0, 3), np.float32),
        np.concatenate(faces).astype(np.int32) if faces else np.zeros((0, 3), np.int32),
        np.concatenate(colours) if colours else np.zeros((0, 4), np.uint8),
    )
