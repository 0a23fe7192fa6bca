"""The Foxglove pieces agree with each other and with MuJoCo: URDF links are the /tf frames,
the URDF's rest pose and /tf's poses are MuJoCo's, and capsules survive the trip to URDF."""

from __future__ import annotations

import io
import re
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
import pytest

yourdfpy = pytest.importorskip("yourdfpy")

from rollout.codec import deserialize, get_type, serialize  # noqa: E402
from rollout.errors import RolloutError  # noqa: E402
from rollout.model import (  # noqa: E402
    ModelError,
    env_grid_offsets,
    frame_names,
    load_model,
    local_poses,
    mjcf_to_urdf,
    pose_array,
    pose_array_cdr,
    quat_to_matrix,
    robot_body_names,
    robot_body_parents,
    tf_transforms,
    wxyz_to_xyzw,
)
from rollout.model.urdf import glb_bytes, quat_to_rpy  # noqa: E402

HUMANOID = Path(gymnasium.__file__).parent / "envs/mujoco/assets/humanoid.xml"
ENVS = [0, 2, 5]


@pytest.fixture(scope="module")
def text() -> str:
    return HUMANOID.read_text()


@pytest.fixture(scope="module")
def model(text: str) -> mujoco.MjModel:
    return load_model(text)


@pytest.fixture(scope="module")
def robot(text: str):
    return parse(mjcf_to_urdf(text, envs=ENVS))


def parse(urdf: str):
    return yourdfpy.URDF.load(io.StringIO(urdf), load_meshes=False, build_collision_scene_graph=False)


def world_poses(model: mujoco.MjModel, seeds: list[int]) -> np.ndarray:
    """[len(seeds), B, 7] body world poses (x y z qx qy qz qw) for random configurations."""
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        data = mujoco.MjData(model)
        data.qpos[:3] = rng.normal(size=3)
        q = rng.normal(size=4)
        data.qpos[3:7] = q / np.linalg.norm(q)
        data.qpos[7:] = rng.uniform(-1, 1, size=model.nq - 7)
        mujoco.mj_kinematics(model, data)
        out.append(np.concatenate([data.xpos[1:], wxyz_to_xyzw(data.xquat[1:])], axis=1))
    return np.stack(out)


def pose_matrix(p: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = quat_to_matrix(p[3:7])
    t[:3, 3] = p[:3]
    return t


def test_urdf_parses_and_its_links_are_the_tf_child_frames(text, model, robot):
    names = robot_body_names(model)
    poses = world_poses(model, list(range(6)))
    tf = tf_transforms(poses, ENVS, names, 1_700_000_000_000_000_000, parents=robot_body_parents(model))

    assert robot.validate()
    assert robot.base_link == "world"
    children = [t.child_frame_id for t in tf.transforms]
    assert sorted(children) == sorted(link.name for link in robot.robot.links if link.name != "world")
    assert children == [f for k in ENVS for f in frame_names(names, k)]
    assert children[:2] == ["env0/torso", "env0/lwaist"]
    # every /tf edge is a URDF joint and the other way round: Foxglove never sees a frame change parent
    tf_edges = {(t.header.frame_id, t.child_frame_id) for t in tf.transforms}
    urdf_edges = {(j.parent, j.child) for j in robot.robot.joints}
    assert tf_edges == urdf_edges
    # bodies with MuJoCo joints float (their motion comes from /tf); the feet are welded to the shins
    fixed = sorted(j.child for j in robot.robot.joints if j.type == "fixed")
    assert fixed == sorted(f"env{k}/{foot}" for k in ENVS for foot in ("left_foot", "right_foot"))
    assert {j.type for j in robot.robot.joints} == {"floating", "fixed"}


def test_urdf_rest_pose_is_mujocos_initial_pose(model, robot):
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    names = robot_body_names(model)
    for k in ENVS:
        for b, frame in enumerate(frame_names(names, k)):
            got = robot.get_transform(frame_to=frame, frame_from="world")
            expected = pose_matrix(np.concatenate([data.xpos[b + 1], wxyz_to_xyzw(data.xquat[b + 1])]))
            np.testing.assert_allclose(got, expected, atol=1e-9)


def test_capsule_becomes_a_cylinder_and_two_end_spheres(model, robot):
    cylinders = spheres = 0
    for link in robot.robot.links:
        for v in link.visuals:
            cylinders += v.geometry.cylinder is not None
            spheres += v.geometry.sphere is not None
    # humanoid: 12 capsules and 5 spheres per copy
    assert (cylinders, spheres) == (12 * len(ENVS), (2 * 12 + 5) * len(ENVS))

    # right_thigh1: fromto="0 0 0  0 0.01 -0.34" size 0.06, in body right_thigh
    thigh = robot.link_map["env2/right_thigh"]
    by_name = {v.name: v for v in thigh.visuals}
    assert set(by_name) == {"right_thigh1", "right_thigh1_cap1", "right_thigh1_cap2"}
    body = by_name["right_thigh1"]
    assert body.geometry.cylinder.radius == pytest.approx(0.06)
    assert body.geometry.cylinder.length == pytest.approx(np.hypot(0.01, 0.34), abs=1e-9)
    np.testing.assert_allclose(body.origin[:3, 3], [0, 0.005, -0.17], atol=1e-9)
    axis = body.origin[:3, 2]  # URDF cylinders run along their local z
    np.testing.assert_allclose(abs(axis @ np.array([0, 0.01, -0.34]) / np.hypot(0.01, 0.34)), 1, atol=1e-9)
    ends = sorted(tuple(np.round(by_name[n].origin[:3, 3], 9)) for n in ("right_thigh1_cap1", "right_thigh1_cap2"))
    np.testing.assert_allclose(ends, sorted([(0, 0, 0), (0, 0.01, -0.34)]), atol=1e-9)
    for n in ("right_thigh1_cap1", "right_thigh1_cap2"):
        assert by_name[n].geometry.sphere.radius == pytest.approx(0.06)


def test_urdf_colours_come_from_the_model(robot):
    materials = {m.name: m for m in robot.robot.materials}
    (only,) = materials.values()
    np.testing.assert_allclose(only.color.rgba, [0.8, 0.6, 0.4, 1.0])
    for link in robot.robot.links:
        assert all(v.material.name == only.name for v in link.visuals)


def test_urdf_vectors_use_single_spaces_for_foxgloves_parser(text):
    urdf = mjcf_to_urdf(text, envs=[0])
    values = re.findall(r'\b(xyz|rpy|size|rgba)="([^"]*)"', urdf)
    assert values
    for attr, value in values:
        parts = value.split(" ")
        assert len(parts) == (4 if attr == "rgba" else 3), (attr, value)
        assert all(re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)?", p) for p in parts), (attr, value)


def test_tf_chain_reproduces_the_world_poses(model):
    names, parents = robot_body_names(model), robot_body_parents(model)
    poses = world_poses(model, [11, 12, 13, 14]).astype(np.float32)  # State.body_poses is float32
    offsets = env_grid_offsets(4, 3.0)[[1, 3]]
    tf = tf_transforms(poses, [1, 3], names, 5, parents=parents, offsets=offsets)

    by_child = {t.child_frame_id: t for t in tf.transforms}
    for e, k in enumerate([1, 3]):
        for b, frame in enumerate(frame_names(names, k)):
            # compose parent chain up to the world
            chain, t = np.eye(4), by_child[frame]
            while True:
                tr, ro = t.transform.translation, t.transform.rotation
                chain = pose_matrix(np.array([tr.x, tr.y, tr.z, ro.x, ro.y, ro.z, ro.w])) @ chain
                if t.header.frame_id == "world":
                    break
                t = by_child[t.header.frame_id]
            expected = pose_matrix(poses[k, b].astype(np.float64))
            expected[:3, 3] += offsets[e]
            np.testing.assert_allclose(chain, expected, atol=1e-5)
    assert tf.transforms[0].header.stamp.sec == 0 and tf.transforms[0].header.stamp.nanosec == 5


def test_local_poses_are_parent_relative(model):
    parents = robot_body_parents(model)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    world = np.concatenate([data.xpos[1:], wxyz_to_xyzw(data.xquat[1:])], axis=1)
    local = local_poses(world, parents)
    # at the initial pose a body's local pose is its MuJoCo body_pos / body_quat
    np.testing.assert_allclose(local[:, :3], model.body_pos[1:], atol=1e-12)
    np.testing.assert_allclose(np.abs(np.sum(local[:, 3:] * wxyz_to_xyzw(model.body_quat[1:]), axis=1)), 1, atol=1e-12)


def test_tf_without_parents_hangs_every_body_off_the_world(model):
    names = robot_body_names(model)
    poses = world_poses(model, [1])
    tf = tf_transforms(poses, [0], names, 0)
    assert {t.header.frame_id for t in tf.transforms} == {"world"}
    tr = tf.transforms[3].transform.translation
    np.testing.assert_allclose([tr.x, tr.y, tr.z], poses[0, 3, :3])
    data = serialize(tf)
    assert deserialize(data, get_type("tf2_msgs/msg/TFMessage")) == tf


def test_tf_refuses_mismatched_inputs(model):
    names = robot_body_names(model)
    poses = world_poses(model, [1])
    with pytest.raises(ValueError, match="body names"):
        tf_transforms(poses, [0], names[:-1], 0)
    with pytest.raises(ValueError, match="out of range"):
        tf_transforms(poses, [1], names, 0)


def test_pose_array_fast_bytes_equal_the_codec():
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 4096):
        pos = rng.normal(size=(n, 3)).astype(np.float32)
        quat = rng.normal(size=(n, 4)).astype(np.float32)
        for frame in ("world", "map", "ab"):
            msg = pose_array(pos.ravel(), quat.ravel(), 1_700_000_000_123_456_789, frame_id=frame)
            assert pose_array_cdr(pos, quat, 1_700_000_000_123_456_789, frame_id=frame) == serialize(msg)
    back = deserialize(pose_array_cdr(pos, quat, 3, offsets=np.ones((n, 3))), get_type("geometry_msgs/msg/PoseArray"))
    assert back.header.frame_id == "world" and back.header.stamp.nanosec == 3 and len(back.poses) == n
    p = back.poses[10]
    np.testing.assert_allclose([p.position.x, p.position.y, p.position.z], pos[10] + 1, rtol=1e-6)
    o = p.orientation
    np.testing.assert_allclose([o.x, o.y, o.z, o.w], quat[10], rtol=1e-6)


def test_offsets_move_each_copys_root_in_the_urdf(text, model):
    offsets = np.array([[10.0, 0, 0], [0, -5.0, 0]])
    robot = parse(mjcf_to_urdf(text, envs=[0, 1], offsets=offsets))
    for k in (0, 1):
        got = robot.get_transform(frame_to=f"env{k}/torso", frame_from="world")[:3, 3]
        np.testing.assert_allclose(got, model.body_pos[1] + offsets[k], atol=1e-9)


def test_prefix_and_world_frame_are_configurable(text):
    urdf = mjcf_to_urdf(text, envs=[7], prefix="robot_{k}/", world_frame="odom")
    robot = parse(urdf)
    assert robot.base_link == "odom"
    assert "robot_7/left_foot" in robot.link_map


MESHY = """
<mujoco>
  <asset><mesh name="tet" vertex="0 0 0  1 0 0  0 1 0  0 0 1"/></asset>
  <worldbody>
    <body name="base" pos="0 0 1"><freejoint/>
      <geom type="mesh" mesh="tet" rgba="0 1 0 1"/>
      <geom type="ellipsoid" size="0.1 0.2 0.3" pos="0 0 0.5"/>
      <body name="welded" pos="0.3 0 0"><geom type="box" size="0.1 0.2 0.3"/></body>
    </body>
  </worldbody>
</mujoco>
"""


def test_meshes_and_ellipsoids_are_embedded_as_glb():
    robot = parse(mjcf_to_urdf(MESHY, envs=[0]))
    visuals = robot.link_map["env0/base"].visuals
    uris = [v.geometry.mesh.filename for v in visuals]
    assert all(u.startswith("data:model/gltf-binary;base64,") for u in uris)
    box = robot.link_map["env0/welded"].visuals[0].geometry.box
    np.testing.assert_allclose(box.size, [0.2, 0.4, 0.6])
    assert {j.name: j.type for j in robot.robot.joints} == {"env0/base_joint": "floating", "env0/welded_joint": "fixed"}

    import base64

    import trimesh

    scene = trimesh.load(io.BytesIO(base64.b64decode(uris[0].split(",", 1)[1])), file_type="glb", force="mesh")
    stored = np.asarray(scene.vertices)
    z_up = np.stack([stored[:, 0], -stored[:, 2], stored[:, 1]], axis=1)  # glTF is Y-up
    # vertices are in the geom frame: back to the body frame with the visual's origin
    origin = visuals[0].origin
    body = z_up @ origin[:3, :3].T + origin[:3, 3]
    tetrahedron = [[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]]
    np.testing.assert_allclose(np.unique(np.round(body, 5), axis=0), tetrahedron, atol=1e-5)


def test_glb_header_is_well_formed():
    data = glb_bytes(np.zeros((3, 3)), np.array([[0, 1, 2]]))
    assert data[:4] == b"glTF" and int.from_bytes(data[8:12], "little") == len(data) and len(data) % 4 == 0


def test_rpy_round_trips_including_gimbal_lock():
    rng = np.random.default_rng(1)
    quats = list(rng.normal(size=(20, 4))) + [np.array([0, np.sin(np.pi / 4), 0, np.cos(np.pi / 4)])]
    for q in quats:
        q = q / np.linalg.norm(q)
        r, p, y = quat_to_rpy(q)
        rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
        ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
        rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
        np.testing.assert_allclose(rz @ ry @ rx, quat_to_matrix(q), atol=1e-9)


def test_unconvertible_model_raises_model_error():
    missing = (
        '<mujoco><asset><mesh name="m" file="meshes/pelvis.stl"/></asset>'
        '<worldbody><body><freejoint/><geom type="mesh" mesh="m"/></body></worldbody></mujoco>'
    )
    with pytest.raises(ModelError, match="pelvis.stl") as info:
        mjcf_to_urdf(missing, envs=[0])
    assert isinstance(info.value, RolloutError)
