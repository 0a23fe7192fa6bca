"""Body meshes come out of the recorded model in the sim's body order and land where MuJoCo puts the geoms."""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
import pytest

from rollout.errors import RolloutError
from rollout.model import (
    ModelError,
    body_meshes,
    env_grid_offsets,
    load_model,
    posed_scene,
    posed_vertices,
    quat_to_matrix,
    robot_body_names,
    robot_body_parents,
    static_geometry,
    transform_points,
    wxyz_to_xyzw,
    xyzw_to_wxyz,
)
from rollout.model.geometry import geom_local_mesh

HUMANOID = Path(gymnasium.__file__).parent / "envs/mujoco/assets/humanoid.xml"


@pytest.fixture(scope="module")
def humanoid_text() -> str:
    return HUMANOID.read_text()


@pytest.fixture(scope="module")
def humanoid(humanoid_text: str) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(humanoid_text)


def body_poses_of(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """[B, 7] world poses of bodies 1..nbody-1, x y z qx qy qz qw: what the sim publishes."""
    return np.concatenate([data.xpos[1:], wxyz_to_xyzw(data.xquat[1:])], axis=1)


def random_data(model: mujoco.MjModel, seed: int) -> mujoco.MjData:
    rng = np.random.default_rng(seed)
    data = mujoco.MjData(model)
    data.qpos[:3] = rng.normal(size=3)
    quat = rng.normal(size=4)
    data.qpos[3:7] = quat / np.linalg.norm(quat)
    data.qpos[7:] = rng.uniform(-1.0, 1.0, size=model.nq - 7)
    mujoco.mj_kinematics(model, data)
    return data


def geom_frame_vertices(model: mujoco.MjModel, mesh, g: int) -> np.ndarray:
    """Vertices of geom `g` taken back from the body frame into the geom's own frame."""
    i = mesh.geom_ids.index(g)
    v = mesh.vertices[mesh.geom_offsets[i] : mesh.geom_offsets[i + 1]].astype(np.float64)
    rot = quat_to_matrix(wxyz_to_xyzw(model.geom_quat[g]))
    return (v - model.geom_pos[g]) @ rot


def test_humanoid_gives_one_mesh_per_robot_body_in_sim_order(humanoid_text, humanoid):
    meshes = body_meshes(humanoid_text)

    assert humanoid.nbody == 14
    assert len(meshes) == 13
    assert [m.name for m in meshes] == [humanoid.body(i).name for i in range(1, 14)]
    assert [m.name for m in meshes] == robot_body_names(humanoid)
    assert [m.body_id for m in meshes] == list(range(1, 14))
    for mesh in meshes:
        assert not mesh.is_empty, mesh.name
        assert mesh.vertices.dtype == np.float32 and mesh.vertices.shape[1] == 3
        assert mesh.faces.dtype == np.int32 and mesh.faces.max() < len(mesh.vertices)
        assert mesh.vertex_rgba.shape == (len(mesh.vertices), 4)
        np.testing.assert_allclose(mesh.rgba, [0.8, 0.6, 0.4, 1.0], atol=1e-6)
    # all 17 non-plane geoms are drawn, each exactly once
    assert sorted(g for m in meshes for g in m.geom_ids) == list(range(1, 18))


def test_mesh_bounds_match_capsule_and_sphere_sizes(humanoid_text, humanoid):
    meshes = body_meshes(humanoid_text)
    for mesh in meshes:
        for g in mesh.geom_ids:
            v = geom_frame_vertices(humanoid, mesh, g)
            radius, half = humanoid.geom_size[g, 0], humanoid.geom_size[g, 1]
            radial = np.linalg.norm(v[:, :2], axis=1)
            if humanoid.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE:
                assert radial.max() == pytest.approx(radius, abs=1e-6)
                assert np.abs(v[:, 2]).max() == pytest.approx(half + radius, abs=1e-6)
                # every vertex lies on the capsule's surface
                along = np.clip(v[:, 2], -half, half)
                dist = np.linalg.norm(v - np.stack([0 * along, 0 * along, along], axis=1), axis=1)
                np.testing.assert_allclose(dist, radius, atol=1e-6)
            else:
                assert humanoid.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE
                np.testing.assert_allclose(np.linalg.norm(v, axis=1), radius, atol=1e-6)

    torso = meshes[0]  # torso1 capsule along y, head sphere on top, uwaist capsule below
    np.testing.assert_allclose(torso.vertices.min(axis=0), [-0.09, -0.14, -0.18], atol=1e-6)
    np.testing.assert_allclose(torso.vertices.max(axis=0), [0.09, 0.14, 0.28], atol=1e-6)


def test_posed_vertices_land_on_mujoco_geom_frames(humanoid_text, humanoid):
    meshes = body_meshes(humanoid_text)
    datas = [random_data(humanoid, seed) for seed in (1, 2, 3)]
    poses = np.stack([body_poses_of(humanoid, d) for d in datas])  # [N=3, B=13, 7]

    world = posed_vertices(meshes, poses)

    assert [w.shape for w in world] == [(3, len(m.vertices), 3) for m in meshes]
    for n, data in enumerate(datas):
        for b, mesh in enumerate(meshes):
            for i, g in enumerate(mesh.geom_ids):
                local, _ = geom_local_mesh(humanoid, g)
                expected = local @ data.geom_xmat[g].reshape(3, 3).T + data.geom_xpos[g]
                got = world[b][n, mesh.geom_offsets[i] : mesh.geom_offsets[i + 1]]
                np.testing.assert_allclose(got, expected, atol=2e-6)
    # the geoms' centres are where MuJoCo says
    centres = transform_points(humanoid.geom_pos[1:2], poses[:, 0])
    np.testing.assert_allclose(centres[:, 0], [d.geom_xpos[1] for d in datas], atol=1e-9)


def test_body_order_and_names_match_what_the_sim_publishes(humanoid_text, humanoid):
    from rollout.sim.mjlayout import MjLayout

    for model in (humanoid, load_model(SEPARATED)):
        assert robot_body_names(model) == list(MjLayout.of(model).body_names)
    data = random_data(humanoid, 5)
    layout = MjLayout.of(humanoid)
    published = layout.poses(data.qpos[None], data.xpos[None], data.xquat[None]).body_poses  # [1, B, 7]
    meshes = body_meshes(humanoid_text)
    head = meshes[0].geom_ids.index(2)  # the head sphere of the torso
    start, stop = meshes[0].geom_offsets[head : head + 2]
    centre = posed_vertices(meshes, published)[0][0, start:stop].mean(axis=0)
    np.testing.assert_allclose(centre, data.geom_xpos[2], atol=1e-5)


def test_posed_scene_merges_one_env(humanoid_text, humanoid):
    meshes = body_meshes(humanoid_text)
    poses = body_poses_of(humanoid, random_data(humanoid, 4))
    verts, faces, colours = posed_scene(meshes, poses)
    assert len(verts) == sum(len(m.vertices) for m in meshes) == len(colours)
    assert len(faces) == sum(len(m.faces) for m in meshes) and faces.max() == len(verts) - 1
    torso = posed_vertices(meshes[:1], poses[None, :1])[0][0]
    np.testing.assert_allclose(verts[: len(meshes[0].vertices)], torso, atol=1e-6)


def test_quaternion_order_helpers_round_trip():
    q = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_array_equal(xyzw_to_wxyz(wxyz_to_xyzw(q)), q)
    unit = q / np.linalg.norm(q, axis=1, keepdims=True)
    for qi in unit:
        expected = np.zeros(9)
        mujoco.mju_quat2Mat(expected, xyzw_to_wxyz(wxyz_to_xyzw(qi)))
        np.testing.assert_allclose(quat_to_matrix(wxyz_to_xyzw(qi)), expected.reshape(3, 3), atol=1e-12)


def test_floor_plane_is_static_geometry_not_a_body(humanoid_text):
    static = static_geometry(humanoid_text)
    assert [p.name for p in static.planes] == ["floor"]
    floor = static.planes[0]
    np.testing.assert_allclose(floor.half_size, [20, 20])
    np.testing.assert_allclose(floor.quat_xyzw, [0, 0, 0, 1])
    np.testing.assert_allclose(floor.rgba, [0.8, 0.9, 0.8, 1.0], atol=1e-6)
    assert static.mesh.is_empty and static.mesh.name == "world"


SEPARATED = """
<mujoco>
  <asset><material name="red" rgba="1 0 0 1"/></asset>
  <worldbody>
    <geom name="ramp" type="box" size="1 1 0.1" pos="3 0 0"/>
    <body pos="0 0 1">
      <freejoint/>
      <geom name="collide" type="box" size="0.1 0.1 0.1" group="3"/>
      <geom name="look" type="sphere" size="0.2" contype="0" conaffinity="0" group="2" material="red"/>
      <geom name="hidden" type="sphere" size="0.3" rgba="0 0 1 0"/>
      <body name="arm" pos="0 0 0.5">
        <joint type="hinge"/>
        <geom name="arm_collide" type="cylinder" size="0.05 0.2"/>
        <geom name="arm_ghost" type="ellipsoid" size="0.1 0.2 0.3" group="4"/>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def test_visual_geoms_replace_collision_geoms_when_the_model_separates_them():
    meshes = body_meshes(SEPARATED)
    model = load_model(SEPARATED)
    names = {m.name: [model.geom(g).name for g in m.geom_ids] for m in meshes}
    assert names == {"body_1": ["look"], "arm": ["arm_collide"]}  # unnamed body -> body_<id>
    np.testing.assert_allclose(meshes[0].rgba, [1, 0, 0, 1])  # material colour (geom rgba is default)
    assert robot_body_parents(model) == [-1, 0]
    static = static_geometry(SEPARATED)
    assert static.planes == []
    np.testing.assert_allclose(static.mesh.vertices.min(axis=0), [2, -1, -0.1], atol=1e-6)


CUBE_MESH = """
<mujoco>
  <asset>
    <mesh name="cube" vertex="0 0 0  1 0 0  1 2 0  0 2 0  0 0 3  1 0 3  1 2 3  0 2 3"/>
  </asset>
  <worldbody>
    <body name="box_body" pos="1 2 3" euler="0 0 90">
      <freejoint/>
      <geom type="mesh" mesh="cube"/>
    </body>
  </worldbody>
</mujoco>
"""


def test_mesh_geoms_keep_the_authored_vertex_positions():
    # MuJoCo recentres mesh vertices on compile and moves the geom frame to compensate;
    # the body-frame mesh must come out as authored.
    (mesh,) = body_meshes(CUBE_MESH)
    authored = np.array([[x, y, z] for x in (0, 1) for y in (0, 2) for z in (0, 3)], dtype=np.float64)
    got = np.unique(np.round(mesh.vertices.astype(np.float64), 5), axis=0)
    np.testing.assert_allclose(got, np.unique(authored, axis=0), atol=1e-5)
    model = load_model(CUBE_MESH)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    world = posed_vertices([mesh], body_poses_of(model, data)[None])[0][0]
    np.testing.assert_allclose(world.min(axis=0), [1 - 2, 2, 3], atol=1e-5)  # rotated 90 deg about z
    np.testing.assert_allclose(world.max(axis=0), [1, 2 + 1, 3 + 3], atol=1e-5)


@pytest.mark.parametrize(
    "text, words",
    [
        ('<mujoco><asset><mesh name="m" file="/no/such/robot.stl"/></asset>'
         '<worldbody><body><geom type="mesh" mesh="m"/></body></worldbody></mujoco>', "robot.stl"),
        ("<mujoco><worldbody><body><geom type='sphere'</body></worldbody></mujoco>", "XML"),
        ("   ", "empty"),
    ],
)
def test_unusable_model_raises_one_line_model_error(text, words):
    with pytest.raises(ModelError) as info:
        body_meshes(text)
    assert isinstance(info.value, RolloutError)
    message = str(info.value)
    assert words in message and "\n" not in message


def test_unknown_model_format_is_refused(humanoid_text):
    with pytest.raises(ModelError, match="model format"):
        body_meshes(humanoid_text, "sdf")  # type: ignore[arg-type]


def test_urdf_model_text_is_compiled_too():
    urdf = """<robot name="r">
      <link name="base"><collision><geometry><box size="0.2 0.2 0.2"/></geometry></collision></link>
      <link name="tip"><collision><geometry><sphere radius="0.1"/></geometry></collision></link>
      <joint name="j" type="revolute"><parent link="base"/><child link="tip"/>
        <origin xyz="0 0 0.5"/><axis xyz="0 1 0"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
    </robot>"""
    meshes = body_meshes(urdf, "urdf")
    # MuJoCo welds a URDF's root link to the world: its geometry is static, "tip" the one robot body
    assert [m.name for m in meshes] == ["tip"] and not meshes[0].is_empty
    assert not static_geometry(urdf, "urdf").mesh.is_empty


def test_humanoid_converts_well_under_a_second(humanoid_text):
    body_meshes(humanoid_text)  # warm: imports
    start = time.perf_counter()
    body_meshes(humanoid_text)
    static_geometry(humanoid_text)
    assert time.perf_counter() - start < 0.25


def test_env_grid_offsets_centre_a_square_grid():
    np.testing.assert_array_equal(env_grid_offsets(3, 0.0), np.zeros((3, 3)))
    np.testing.assert_array_equal(env_grid_offsets(1, 2.0), np.zeros((1, 3)))
    offs = env_grid_offsets(4, 2.0)
    np.testing.assert_allclose(offs, [[-1, -1, 0], [1, -1, 0], [-1, 1, 0], [1, 1, 0]])
    big = env_grid_offsets(4096, 1.5)
    assert big.shape == (4096, 3) and big.dtype == np.float32
    assert len(np.unique(big, axis=0)) == 4096
    np.testing.assert_allclose(big.mean(axis=0), 0, atol=1e-4)


def test_to_trimesh_keeps_vertices_faces_and_colours(humanoid_text):
    foot = body_meshes(humanoid_text)[5]  # right_foot: one sphere
    mesh = foot.to_trimesh()
    np.testing.assert_array_equal(mesh.vertices, foot.vertices)
    np.testing.assert_array_equal(mesh.faces, foot.faces)
    assert mesh.is_watertight and mesh.volume > 0  # closed and wound outward
    np.testing.assert_array_equal(mesh.visual.vertex_colors[0], [204, 153, 102, 255])
