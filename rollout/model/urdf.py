"""The robot in Foxglove's 3D panel: a URDF for /robot_description, /tf, and base poses (issue 7).

    urdf = mjcf_to_urdf(desc.model, envs=[0, 1, 2, 3], model_format=desc.model_format)  # once
    parents = robot_body_parents(load_model(desc.model, desc.model_format))              # once
    tf = tf_transforms(state.body_poses.reshape(n, b, 7), [0, 1, 2, 3], desc.body_names,
                       stamp_ns, parents=parents)                                        # each step
    data = pose_array_cdr(base_pos, base_quat, stamp_ns)                                 # each step

Pure functions, no middleware. How the pieces fit Foxglove (details and sources in
/work/notes/foxglove_facts.md):

- Foxglove's URDF layer turns every URDF joint into a transform parent -> child stamped at time 0
  (the joint's origin; joint type and angle are ignored), then draws each link's visuals in the
  link's frame, looked up in the same transform tree that /tf feeds. So the URDF here has one link
  per body and one joint per body whose parent is exactly the /tf parent of that body: the tree
  never changes shape (Foxglove clears a frame's transform history whenever its parent changes),
  the URDF's origins are the rest pose shown until /tf arrives, and /tf (later stamps) wins after.
- One URDF holds one copy of the robot per shown env under a single root link `world`
  (`world_frame`); copy k's links are `prefix.format(k=k) + body name` ("env3/torso"), the same
  strings as the /tf child frames (`frame_names`). Foxglove's `framePrefix` setting exists only on
  custom URDF layers, so namespacing inside the URDF is what makes the default
  /robot_description topic display work.
- A body's joint is `floating` when the MuJoCo body has degrees of freedom and `fixed` when it is
  welded to its parent; the motion itself comes from /tf, as robot_state_publisher's would.
- URDF has no capsule: a capsule is a cylinder plus a sphere at each end, three <visual>s of the
  link. Spheres, boxes and cylinders map one to one; ellipsoids and mesh geoms become a mesh whose
  filename is a self-contained `data:model/gltf-binary;base64,...` URI (a GLB, written Y-up as glTF
  requires; Foxglove turns glTF to Z-up itself, so no "mesh up axis" setting matters). World-body
  geoms other than planes are visuals of the `world` link; planes are left to Foxglove's grid.
- Numbers are written with single spaces: Foxglove's parser splits vector attributes on one space.

A model MuJoCo cannot compile (bad XML, a mesh file that is not there) raises `ModelError`:
callers warn and write the bag without /robot_description.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import numpy as np

from rollout.model.errors import ModelError
from rollout.model.geometry import (
    ModelFormat,
    geom_local_mesh,
    geom_rgba,
    load_model,
    quat_to_matrix,
    robot_body_names,
    visual_geoms,
    wxyz_to_xyzw,
)

if TYPE_CHECKING:
    import mujoco

    from rollout.codec import Message

DEFAULT_PREFIX = "env{k}/"
_SPHERE, _CAPSULE, _ELLIPSOID, _CYLINDER, _BOX, _MESH = 2, 3, 4, 5, 6, 7


def frame_names(body_names: Sequence[str], env: int, *, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The /tf child frames (= URDF link names) of env `env`'s bodies, e.g. "env3/torso"."""
    p = prefix.format(k=env)
    return [p + name for name in body_names]


# ----------------------------------------------------------------------------- URDF


def mjcf_to_urdf(
    model_text: str | mujoco.MjModel,
    *,
    envs: Sequence[int],
    prefix: str = DEFAULT_PREFIX,
    model_format: ModelFormat = "mjcf",
    assets: dict[str, bytes] | None = None,
    world_frame: str = "world",
    robot_name: str = "rollout",
    offsets: np.ndarray | None = None,
    segments: int = 16,
) -> str:
    """A URDF with one namespaced copy of the robot per env in `envs`, all under link `world_frame`.

    model_text: `RobotDescription.model` (MJCF, or URDF when `model_format="urdf"`; either way it is
    compiled by MuJoCo first, so geometry is what the sim used).
    offsets: optional [len(envs), 3] added to each copy's root position (see `env_grid_offsets`),
    matching the offsets given to `tf_transforms`.
    segments: sides of the embedded ellipsoid meshes.
    Raises `ModelError` if the model does not compile or has clashing body names.
    """
    m = load_model(model_text, model_format, assets=assets)
    names = robot_body_names(m)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ModelError(f"the robot model has several bodies named {dup[0]!r}; URDF links need unique names")
    envs = _env_list(envs)
    offs = _offsets(offsets, len(envs))
    chosen = visual_geoms(m)
    materials: dict[tuple[float, ...], str] = {}

    def visuals_of(body: int) -> str:
        return "".join(_geom_visuals(m, g, materials, segments) for g in chosen.get(body, []))

    body_visuals = [visuals_of(b) for b in range(1, m.nbody)]
    world_visuals = visuals_of(0)

    lines = ['<?xml version="1.0"?>', f"<robot name={quoteattr(robot_name)}>"]
    lines.append(f"  <link name={quoteattr(world_frame)}>{world_visuals}</link>")
    for e, k in enumerate(envs):
        frames = frame_names(names, k, prefix=prefix)
        for i, frame in enumerate(frames):
            b = i + 1
            parent = int(m.body_parentid[b])
            pos = m.body_pos[b] + (offs[e] if parent == 0 else 0.0)
            kind = "floating" if m.body_jntnum[b] > 0 else "fixed"
            lines.append(f"  <link name={quoteattr(frame)}>{body_visuals[i]}</link>")
            lines.append(
                f"  <joint name={quoteattr(frame + '_joint')} type=\"{kind}\">"
                f"<parent link={quoteattr(world_frame if parent == 0 else frames[parent - 1])}/>"
                f"<child link={quoteattr(frame)}/>{_origin(pos, wxyz_to_xyzw(m.body_quat[b]))}</joint>"
            )
    for rgba, name in materials.items():
        lines.append(f'  <material name="{name}"><color rgba="{_nums(rgba)}"/></material>')
    lines.append("</robot>")
    return "\n".join(lines) + "\n"


def _geom_visuals(m: mujoco.MjModel, g: int, materials: dict[tuple[float, ...], str], segments: int) -> str:
    """The <visual> elements of geom `g` in its body's frame (three for a capsule)."""
    rgba = tuple(round(float(c), 6) for c in geom_rgba(m, g))
    mat = materials.setdefault(rgba, f"rgba_{len(materials)}")
    pos, quat = m.geom_pos[g], wxyz_to_xyzw(m.geom_quat[g])
    size = m.geom_size[g]
    t = int(m.geom_type[g])
    name = m.geom(g).name or f"geom_{g}"

    def visual(shape: str, p: np.ndarray, q: np.ndarray, suffix: str = "") -> str:
        return (
            f"<visual name={quoteattr(name + suffix)}>{_origin(p, q)}<geometry>{shape}</geometry>"
            f'<material name="{mat}"/></visual>'
        )

    if t == _SPHERE:
        return visual(f'<sphere radius="{_num(size[0])}"/>', pos, quat)
    if t == _BOX:
        return visual(f'<box size="{_nums(2 * size[:3])}"/>', pos, quat)
    if t == _CYLINDER:
        return visual(f'<cylinder radius="{_num(size[0])}" length="{_num(2 * size[1])}"/>', pos, quat)
    if t == _CAPSULE:
        radius, half = float(size[0]), float(size[1])
        axis = quat_to_matrix(quat)[:, 2]
        ball = f'<sphere radius="{_num(radius)}"/>'
        return (
            visual(f'<cylinder radius="{_num(radius)}" length="{_num(2 * half)}"/>', pos, quat)
            + visual(ball, pos + half * axis, quat, "_cap1")
            + visual(ball, pos - half * axis, quat, "_cap2")
        )
    if t in (_ELLIPSOID, _MESH):
        v, f = geom_local_mesh(m, g, segments)
        uri = "data:model/gltf-binary;base64," + base64.b64encode(glb_bytes(v, f)).decode("ascii")
        return visual(f"<mesh filename={quoteattr(uri)}/>", pos, quat)
    raise ModelError(f"geom {name!r} of type {t} has no URDF equivalent")  # visual_geoms filters these


def _env_list(envs: Sequence[int]) -> list[int]:
    out = [int(k) for k in envs]
    if len(set(out)) != len(out):
        raise ValueError(f"envs {out} name an env twice; frame names must be unique")
    return out


def _offsets(offsets: np.ndarray | None, n: int) -> np.ndarray:
    if offsets is None:
        return np.zeros((n, 3))
    offs = np.asarray(offsets, dtype=np.float64)
    if offs.shape != (n, 3):
        raise ValueError(f"offsets has shape {offs.shape}; expected [{n}, 3] (one per env)")
    return offs


def _num(x: float) -> str:
    x = float(x)
    if abs(x) < 1e-12:  # float noise such as 1.6e-17 from rotating a zero offset
        return "0"
    return format(x, ".12g")


def _nums(xs: Any) -> str:
    return " ".join(_num(x) for x in xs)


def _origin(pos: np.ndarray, quat_xyzw: np.ndarray) -> str:
    return f'<origin xyz="{_nums(pos)}" rpy="{_nums(quat_to_rpy(quat_xyzw))}"/>'


def quat_to_rpy(q_xyzw: np.ndarray) -> np.ndarray:
    """URDF roll, pitch, yaw [3] (R = Rz(yaw) Ry(pitch) Rx(roll)) of a quaternion (x, y, z, w)."""
    r = quat_to_matrix(np.asarray(q_xyzw, dtype=np.float64) / np.linalg.norm(q_xyzw))
    sp = -r[2, 0]
    if abs(sp) >= 1.0 - 1e-12:  # gimbal lock: put everything into yaw
        return np.array([0.0, math.copysign(math.pi / 2, sp), math.atan2(-r[0, 1], r[1, 1])])
    return np.array([math.atan2(r[2, 1], r[2, 2]), math.asin(sp), math.atan2(r[1, 0], r[0, 0])])


def glb_bytes(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    """A minimal binary glTF 2.0 of one triangle mesh given Z-up (vertices [V, 3], faces [F, 3]).

    glTF is Y-up by definition, so (x, y, z) is stored as (x, z, -y); viewers that honour glTF
    (Foxglove does) turn it back.
    """
    v = np.asarray(vertices, dtype=np.float32)
    v = np.stack([v[:, 0], v[:, 2], -v[:, 1]], axis=1).astype(np.float32)
    idx = np.ascontiguousarray(faces, dtype=np.uint32).ravel()
    vbin, ibin = v.tobytes(), idx.tobytes()
    doc = {
        "asset": {"version": "2.0", "generator": "rollout"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1, "mode": 4}]}],
        "buffers": [{"byteLength": len(vbin) + len(ibin)}],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": len(vbin), "target": 34962},
            {"buffer": 0, "byteOffset": len(vbin), "byteLength": len(ibin), "target": 34963},
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": len(v),
                "type": "VEC3",
                "min": v.min(axis=0).tolist() if len(v) else [0, 0, 0],
                "max": v.max(axis=0).tolist() if len(v) else [0, 0, 0],
            },
            {"bufferView": 1, "componentType": 5125, "count": len(idx), "type": "SCALAR"},
        ],
    }
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    binary = vbin + ibin
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return (
        struct.pack("<III", 0x46546C67, 2, total)
        + struct.pack("<II", len(js), 0x4E4F534A)
        + js
        + struct.pack("<II", len(binary), 0x004E4942)
        + binary
    )


# ----------------------------------------------------------------------------- /tf


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def local_poses(world_poses: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """Each body's pose in its parent's frame, [..., B, 7] from world poses [..., B, 7].

    parents[b] is the index of body b's parent in the same list, -1 for the world (pose unchanged).
    Poses are x, y, z, qx, qy, qz, qw; computed in float64.
    """
    w = np.asarray(world_poses, dtype=np.float64)
    par = np.asarray(parents, dtype=np.int64)
    if par.shape != (w.shape[-2],):
        raise ValueError(f"parents has {par.shape[0]} entries for {w.shape[-2]} bodies")
    out = w.copy()
    child = np.flatnonzero(par >= 0)
    if len(child):
        p = w[..., par[child], :]
        c = w[..., child, :]
        p_conj = p[..., 3:7] * np.array([-1.0, -1.0, -1.0, 1.0])
        rot_t = quat_to_matrix(p_conj)  # parent rotation transposed
        out[..., child, 0:3] = np.einsum("...ij,...j->...i", rot_t, c[..., 0:3] - p[..., 0:3])
        out[..., child, 3:7] = _quat_mul(p_conj, c[..., 3:7])
    return out


def _time(stamp: int | Message) -> Message:
    from rollout.codec import get_type

    if isinstance(stamp, (int, np.integer)):
        ns = int(stamp)
        return get_type("builtin_interfaces/msg/Time")(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
    return stamp


def tf_transforms(
    body_poses: np.ndarray,
    envs: Sequence[int],
    body_names: Sequence[str],
    stamp: int | Message,
    *,
    parents: Sequence[int] | None = None,
    prefix: str = DEFAULT_PREFIX,
    world_frame: str = "world",
    offsets: np.ndarray | None = None,
) -> Message:
    """A tf2_msgs/TFMessage with one transform per body of each env in `envs`.

    body_poses: [N, B, 7] world poses (x, y, z, qx, qy, qz, qw) of all N envs (`State.body_poses`).
    stamp: nanoseconds (int) or a builtin_interfaces/Time.
    parents: `robot_body_parents(model)`: each transform is then parent body -> body, exactly the
    tree of `mjcf_to_urdf` (use this whenever the URDF is published). None: every body is a child
    of `world_frame` (only when no URDF is published).
    offsets: optional [len(envs), 3] added to the env's world positions (`env_grid_offsets`).
    """
    from rollout.codec import get_type

    poses = np.asarray(body_poses)
    envs = _env_list(envs)
    if poses.ndim != 3 or poses.shape[2] != 7:
        raise ValueError(f"body_poses has shape {poses.shape}; expected [N, B, 7]")
    if poses.shape[1] != len(body_names):
        raise ValueError(f"body_poses has {poses.shape[1]} bodies but {len(body_names)} body names")
    if envs and not (0 <= min(envs) and max(envs) < poses.shape[0]):
        raise ValueError(f"tf envs {envs} are out of range for {poses.shape[0]} envs")
    sel = poses[envs].astype(np.float64)  # [E, B, 7]
    sel[..., 0:3] += _offsets(offsets, len(envs))[:, None, :]
    if parents is not None:
        sel = local_poses(sel, parents)
    values = sel.tolist()  # Python floats: the fastest thing to hand to the message constructors

    TFMessage = get_type("tf2_msgs/msg/TFMessage")
    TransformStamped = get_type("geometry_msgs/msg/TransformStamped")
    Header = get_type("std_msgs/msg/Header")
    Transform = get_type("geometry_msgs/msg/Transform")
    Vector3 = get_type("geometry_msgs/msg/Vector3")
    Quaternion = get_type("geometry_msgs/msg/Quaternion")
    time = _time(stamp)
    transforms = []
    for e, k in enumerate(envs):
        frames = frame_names(body_names, k, prefix=prefix)
        if parents is None:
            parent_frames = [world_frame] * len(frames)
        else:
            parent_frames = [world_frame if p < 0 else frames[p] for p in parents]
        for child, parent, (x, y, z, qx, qy, qz, qw) in zip(frames, parent_frames, values[e]):
            transforms.append(
                TransformStamped(
                    header=Header(stamp=time, frame_id=parent),
                    child_frame_id=child,
                    transform=Transform(
                        translation=Vector3(x=x, y=y, z=z), rotation=Quaternion(x=qx, y=qy, z=qz, w=qw)
                    ),
                )
            )
    return TFMessage(transforms=transforms)


# ----------------------------------------------------------------------------- base poses


def _base_poses(base_pos: np.ndarray, base_quat: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
    pos = np.asarray(base_pos, dtype=np.float64).reshape(-1, 3)
    quat = np.asarray(base_quat, dtype=np.float64).reshape(-1, 4)
    if len(pos) != len(quat):
        raise ValueError(f"base_pos has {len(pos)} envs but base_quat has {len(quat)}")
    poses = np.empty((len(pos), 7))
    poses[:, 0:3] = pos + (0.0 if offsets is None else _offsets(offsets, len(pos)))
    poses[:, 3:7] = quat
    return poses


def pose_array(
    base_pos: np.ndarray,
    base_quat: np.ndarray,
    stamp: int | Message,
    *,
    frame_id: str = "world",
    offsets: np.ndarray | None = None,
) -> Message:
    """geometry_msgs/PoseArray of every env's base pose.

    base_pos: [N, 3] (or flat [N*3], as in `State`); base_quat: [N, 4] x, y, z, w.
    stamp: nanoseconds (int) or a builtin_interfaces/Time. offsets: optional [N, 3].
    Builds N Pose objects (~8 ms for 4,096 envs); `pose_array_cdr` gives the same bytes in ~0.1 ms.
    """
    from rollout.codec import get_type

    Pose = get_type("geometry_msgs/msg/Pose")
    Point = get_type("geometry_msgs/msg/Point")
    Quaternion = get_type("geometry_msgs/msg/Quaternion")
    Header = get_type("std_msgs/msg/Header")
    poses = [
        Pose(position=Point(x=x, y=y, z=z), orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))
        for x, y, z, qx, qy, qz, qw in _base_poses(base_pos, base_quat, offsets).tolist()
    ]
    return get_type("geometry_msgs/msg/PoseArray")(header=Header(stamp=_time(stamp), frame_id=frame_id), poses=poses)


def pose_array_cdr(
    base_pos: np.ndarray,
    base_quat: np.ndarray,
    stamp: int | Message,
    *,
    frame_id: str = "world",
    offsets: np.ndarray | None = None,
) -> bytes:
    """`serialize(pose_array(...))` written directly with numpy (CDR little-endian, with its header).

    The hot-path form for thousands of envs: after the header every Pose is 7 aligned float64s,
    so the whole array is one `tobytes`.
    """
    time = _time(stamp)
    name = frame_id.encode()
    poses = _base_poses(base_pos, base_quat, offsets)
    head = struct.pack("<iII", time.sec, time.nanosec, len(name) + 1) + name + b"\0"
    head += b"\0" * (-len(head) % 4) + struct.pack("<I", len(poses))
    if len(poses):
        head += b"\0" * (-len(head) % 8)  # float64 alignment, counted from after the CDR header
    return b"\x00\x01\x00\x00" + head + poses.astype("<f8").tobytes()
