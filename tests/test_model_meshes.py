"""A robot whose MJCF `meshdir` points at STL and OBJ files records a self-contained bag: with the
mesh files gone, the viewer's meshes, the video renderer and Foxglove's URDF still draw the robot.

The robot (a box torso from an STL, a sphere foot from an OBJ, scaled by the MJCF) is generated
here with trimesh and stepped by Gymnasium's Ant-v5 with `xml_file=` (its observations and
rewards are generic over MuJoCo models); G1/H1 meshes cannot be fetched in CI.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import struct
import zlib
from pathlib import Path

import mujoco
import numpy as np
import pytest
import trimesh

from rollout.bag import Bag
from rollout.model import ModelError, body_meshes, embed_mjcf_files, self_contained_mjcf
from rollout.recording import RolloutRecorder
from rollout.render import FrameRenderer, RenderError
from rollout.sim import make_env

ROBOT = """<mujoco model="meshbot">
  <compiler angle="radian" meshdir="../meshes/"/>
  <asset>
    <mesh name="torso" file="torso.stl"/>
    <mesh file="foot.obj" scale="1 1 1.5"/>
    <texture name="skin" type="2d" file="skin.png"/>
    <material name="skin" texture="skin" rgba="0.2 0.6 0.3 1"/>
  </asset>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1"/>
    <body name="torso" pos="0 0 0.5"><freejoint/>
      <geom type="mesh" mesh="torso" rgba="0.8 0.3 0.2 1"/>
      <body name="leg" pos="0.15 0 -0.1"><joint name="hip" type="hinge" axis="0 1 0" range="-1 1"/>
        <geom type="mesh" mesh="foot" pos="0 0 -0.1" material="skin"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="hip" gear="10" ctrlrange="-1 1"/></actuator>
</mujoco>
"""


@pytest.fixture
def robot(tmp_path: Path) -> Path:
    """robot/mjcf/robot.xml with its meshes in robot/meshes (and a texture image beside them)."""
    (tmp_path / "robot" / "mjcf").mkdir(parents=True)
    meshes = tmp_path / "robot" / "meshes"
    meshes.mkdir()
    trimesh.creation.box(extents=(0.4, 0.25, 0.15)).export(meshes / "torso.stl")
    trimesh.creation.icosphere(subdivisions=2, radius=0.08).export(meshes / "foot.obj")
    path = tmp_path / "robot" / "mjcf" / "robot.xml"
    (path.parent / "skin.png").write_bytes(_png(4, 4))
    path.write_text(ROBOT)
    return path


def test_inlined_meshes_compile_to_the_same_model(robot: Path) -> None:
    original = mujoco.MjModel.from_xml_path(str(robot))
    text = self_contained_mjcf(robot)
    assert "file=" not in text
    inlined = mujoco.MjModel.from_xml_string(text)
    assert (inlined.nmesh, inlined.nmeshvert, inlined.nmeshface) == (original.nmesh, original.nmeshvert, original.nmeshface)
    np.testing.assert_allclose(inlined.body_mass, original.body_mass, rtol=1e-6)
    np.testing.assert_allclose(inlined.body_inertia, original.body_inertia, rtol=1e-5)
    np.testing.assert_allclose(inlined.geom_pos, original.geom_pos, atol=1e-6)
    # the OBJ's MJCF scale still applies: the foot is 1.5 times taller than wide
    foot = inlined.mesh("foot")
    v = inlined.mesh_vert[foot.vertadr[0] : foot.vertadr[0] + foot.vertnum[0]]
    extent = v.max(axis=0) - v.min(axis=0)
    assert extent[2] == pytest.approx(1.5 * extent[0], rel=1e-3)


def _png(width: int, height: int) -> bytes:
    """A grey RGB PNG (textures cannot be inlined in MJCF: the recorded model leaves them out)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\x80" * (3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_models_without_files_are_left_as_they_are(tmp_path: Path) -> None:
    text = '<mujoco><worldbody><body name="b"><freejoint/><geom size="0.1"/></body></worldbody></mujoco>'
    (tmp_path / "m.xml").write_text(text)
    assert self_contained_mjcf(tmp_path / "m.xml") == text


def test_a_missing_or_lfs_pointer_mesh_is_named(robot: Path) -> None:
    stl = robot.parent.parent / "meshes" / "torso.stl"
    stl.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n")
    with pytest.raises(ModelError, match="torso.stl is a Git LFS pointer"):
        self_contained_mjcf(robot)
    stl.unlink()
    with pytest.raises(ModelError, match="torso.stl does not exist"):
        self_contained_mjcf(robot)


def test_includes_are_inlined(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "body.xml").write_text('<mujoco><body name="inc"><freejoint/><geom size="0.1"/></body></mujoco>')
    text, _ = embed_mjcf_files('<mujoco><worldbody><include file="parts/body.xml"/></worldbody></mujoco>', tmp_path)
    assert mujoco.MjModel.from_xml_string(text).body(1).name == "inc"


def test_a_mesh_robots_bag_draws_without_the_mesh_files(robot: Path, tmp_path: Path) -> None:
    env = make_env("gym:Ant-v5", num_envs=2, seed=0, xml_file=str(robot))
    bag = RolloutRecorder(env, max_steps=8, out=tmp_path / "bag", tf_envs=(0,)).run("random")
    env.close()
    shutil.rmtree(robot.parent.parent)  # the mesh files are not where the bag is read
    with Bag(bag) as b:
        (desc,) = b.iter_decoded("/rollout/robot")
        (urdf,) = b.iter_decoded("/robot_description")
        state = next(iter(b.iter_decoded("/rollout/state")))
    box, ball = trimesh.creation.box(extents=(0.4, 0.25, 0.15)), trimesh.creation.icosphere(subdivisions=2, radius=0.08)

    # viewer: one mesh per body, each with its file's triangles
    meshes = body_meshes(desc.model, desc.model_format)
    assert [m.name for m in meshes] == ["torso", "leg"]
    assert [len(m.faces) for m in meshes] == [len(box.faces), len(ball.faces)]
    np.testing.assert_allclose(np.ptp(meshes[0].vertices, axis=0), [0.4, 0.25, 0.15], atol=1e-6)

    # Foxglove: the URDF's mesh visuals are GLB data URIs with the same triangles
    uris = re.findall(r'filename="data:model/gltf-binary;base64,([^"]+)"', urdf.data)
    glbs = [trimesh.load(io.BytesIO(base64.b64decode(u)), file_type="glb", force="mesh") for u in uris]
    assert sorted(len(g.faces) for g in glbs) == sorted([len(box.faces), len(ball.faces)])

    # video: the renderer compiles the recorded model and draws the torso in its colour
    n, b = int(state.num_envs), int(state.num_bodies)
    try:
        with FrameRenderer(desc.model, model_format=desc.model_format, width=160, height=120, envs=[0], spacing=desc.env_spacing) as r:
            frame = r.render(np.asarray(state.body_poses).reshape(n, b, 7))
    except RenderError as e:
        pytest.skip(f"no offscreen GL here: {e}")
    f = frame.astype(int)
    torso = (f[..., 0] > f[..., 1] + 30) & (f[..., 0] > f[..., 2] + 30)  # red box (rgba 0.8 0.3 0.2)
    foot = f[..., 1] > f[..., 0] + 30  # green sphere (its material's rgba; the texture was left out)
    assert torso.sum() > 200 and foot.sum() > 30
