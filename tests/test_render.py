"""Frames rendered from recorded body poses look exactly like MuJoCo's own rendering of the same state."""

from __future__ import annotations

import math
import os
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
import pytest

from rollout.cameras import (
    CAMERA_PRESETS,
    UnknownPresetError,
    camera_pose,
    parse_preset,
    project_points,
    to_mjv_camera,
)
from rollout.codec import get_type
from rollout.errors import RolloutError
from rollout.model import wxyz_to_xyzw
from rollout.render import FrameRenderer, RenderError, gl_backends

HUMANOID = Path(gymnasium.__file__).parent / "envs/mujoco/assets/humanoid.xml"
W, H = 320, 240


@pytest.fixture(scope="module")
def humanoid_text() -> str:
    return HUMANOID.read_text()


@pytest.fixture(scope="module")
def humanoid(humanoid_text: str) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(humanoid_text)


def stepped(model: mujoco.MjModel, steps: int, seed: int) -> mujoco.MjData:
    """The humanoid after `steps` physics steps of random torques (it stumbles and falls)."""
    rng = np.random.default_rng(seed)
    data = mujoco.MjData(model)
    for _ in range(steps):
        data.ctrl[:] = rng.uniform(-0.4, 0.4, model.nu)
        mujoco.mj_step(model, data)
    mujoco.mj_forward(model, data)
    return data


def poses_of(*datas: mujoco.MjData) -> np.ndarray:
    """[N, B, 7] float32 body poses (x, y, z, qx, qy, qz, qw), as the sim publishes them."""
    return np.stack(
        [np.concatenate([d.xpos[1:], wxyz_to_xyzw(d.xquat[1:])], axis=1) for d in datas]
    ).astype(np.float32)


def robot_mask(frame: np.ndarray) -> np.ndarray:
    """Pixels of the humanoid's orange (0.8, 0.6, 0.4); the floor is grey and the sky blue-grey."""
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return (r > 60) & (r - b > 40) & (r > g)


def reference_frame(model: mujoco.MjModel, data: mujoco.MjData, renderer: FrameRenderer) -> np.ndarray:
    """MuJoCo's standard pipeline from qpos (mj_forward -> mjv_updateScene), same GL backend and camera."""
    if renderer.backend == "osmesa":
        from mujoco.osmesa import GLContext
    elif renderer.backend == "egl":
        from mujoco.egl import GLContext
    else:
        from mujoco.glfw import GLContext
    m = mujoco.MjModel.from_xml_string(HUMANOID.read_text())
    m.vis.quality.offsamples = 0
    ctx = GLContext(W, H)
    ctx.make_current()
    con = mujoco.MjrContext(m, mujoco.mjtFontScale.mjFONTSCALE_150)
    try:
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
        scene = mujoco.MjvScene(m, maxgeom=1000)
        scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        assert renderer.camera is not None
        cam = to_mjv_camera(renderer.camera)
        mujoco.mjv_updateScene(m, data, mujoco.MjvOption(), None, cam, int(mujoco.mjtCatBit.mjCAT_ALL), scene)
        # the camera MuJoCo derives from our orbit parameters is the one the preset describes
        eye = (np.asarray(scene.camera[0].pos) + np.asarray(scene.camera[1].pos)) / 2
        np.testing.assert_allclose(eye, renderer.camera.eye, atol=1e-4)
        np.testing.assert_allclose(scene.camera[0].forward, renderer.camera.forward, atol=1e-5)
        np.testing.assert_allclose(scene.camera[0].up, renderer.camera.up, atol=1e-5)
        rect = mujoco.MjrRect(0, 0, W, H)
        mujoco.mjr_render(rect, scene, con)
        rgb = np.empty((H, W, 3), np.uint8)
        mujoco.mjr_readPixels(rgb, None, rect, con)
        return rgb[::-1].copy()
    finally:
        con.free()
        ctx.free()


@pytest.mark.parametrize("preset", ["side", "top"])
def test_pose_driven_frame_matches_mujocos_own_rendering(humanoid, humanoid_text, preset):
    data = stepped(humanoid, 120, seed=1)
    with FrameRenderer(humanoid_text, width=W, height=H, preset=preset) as renderer:
        frame = renderer.render(poses_of(data))
        expected = reference_frame(humanoid, data, renderer)
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    diff = np.abs(frame.astype(int) - expected.astype(int)).max(axis=-1)
    assert (diff > 8).mean() < 0.001  # float32 poses: at most a few edge pixels differ
    assert robot_mask(frame).sum() > 500  # and the robot is in the picture


def test_frames_change_as_the_robot_moves(humanoid, humanoid_text):
    with FrameRenderer(humanoid_text, width=W, height=H, preset="side") as renderer:
        frames = [renderer.render(poses_of(stepped(humanoid, steps, seed=2))) for steps in (0, 100, 200)]
    for a, b in zip(frames, frames[1:]):
        assert (robot_mask(a) != robot_mask(b)).sum() > 200
    assert all(f.std() > 20 for f in frames)


def test_grid_shows_each_env_in_its_own_place(humanoid, humanoid_text):
    poses = poses_of(stepped(humanoid, 0, 0), stepped(humanoid, 60, 1), stepped(humanoid, 90, 2))
    with FrameRenderer(humanoid_text, width=W, height=H, preset="top", envs=[0, 2], spacing=3.0) as renderer:
        pair = robot_mask(renderer.render(poses))
    with FrameRenderer(humanoid_text, width=W, height=H, preset="top", envs=[2], spacing=3.0) as renderer:
        single = robot_mask(renderer.render(poses))
    # two envs on a 2x1 grid along x: one robot in each half; a single env sits in the middle
    assert pair[:, : W // 2 - 10].sum() > 30 and pair[:, W // 2 + 10 :].sum() > 30
    cols = np.flatnonzero(single.any(axis=0))
    assert abs((cols.min() + cols.max()) / 2 - W / 2) < W * 0.1


def test_poses_already_laid_out_are_drawn_where_they_are(humanoid, humanoid_text):
    poses = poses_of(stepped(humanoid, 0, 0), stepped(humanoid, 0, 0))
    poses[1, :, 0] += 4.0  # the sim placed env 1 four metres along +x
    with FrameRenderer(humanoid_text, width=W, height=H, preset="side", envs=[0, 1], spacing=0.0) as renderer:
        mask = robot_mask(renderer.render(poses))
        assert renderer.camera is not None
        assert renderer.camera.look_at[0] == pytest.approx(2.0, abs=0.05)  # centred between them
    assert mask[:, : W // 2].sum() > 100 and mask[:, W // 2 :].sum() > 100


@pytest.mark.parametrize("preset", CAMERA_PRESETS)
def test_each_preset_sees_the_robot(humanoid, humanoid_text, preset):
    data = stepped(humanoid, 50, seed=3)
    with FrameRenderer(humanoid_text, width=W, height=H, preset=preset) as renderer:
        mask = robot_mask(renderer.render(poses_of(data)))
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert mask.sum() > 300
    assert rows.min() > 0 and rows.max() < H - 1 and cols.min() > 0 and cols.max() < W - 1  # not cut off


def test_follow_tracks_the_robot(humanoid, humanoid_text):
    data = stepped(humanoid, 0, 0)
    poses = poses_of(data)
    with FrameRenderer(humanoid_text, width=W, height=H, preset="follow") as renderer:
        first = renderer.render(poses)
        moved = poses.copy()
        moved[..., 0] += 10.0  # ten metres down the track
        later = renderer.render(moved)
        assert renderer.camera is not None
        assert renderer.camera.look_at[0] == pytest.approx(poses[0, 0, 0] + 10.0, abs=1e-4)
        assert renderer.camera.eye[0] < renderer.camera.look_at[0]  # from behind
    np.testing.assert_array_equal(robot_mask(first), robot_mask(later))


def test_camera_presets_look_from_the_documented_side():
    target = np.array([1.0, 2.0, 0.8])
    side = camera_pose("side", target, 1.0)
    front = camera_pose("front", target, 1.0)
    top = camera_pose("top", target, 1.0)
    follow = camera_pose("follow", target, 1.0)
    assert side.eye[1] < target[1] and abs(side.eye[0] - target[0]) < 1e-9
    assert front.eye[0] > target[0] and abs(front.eye[1] - target[1]) < 1e-9
    np.testing.assert_allclose(top.eye[:2], target[:2], atol=1e-9)
    assert top.eye[2] > target[2]
    assert follow.eye[0] < target[0] and follow.eye[2] > target[2]
    for pose in (side, front, top, follow):
        np.testing.assert_allclose(pose.look_at, target)
        assert np.linalg.norm(pose.eye - pose.look_at) == pytest.approx(pose.distance)
        assert np.dot(pose.up, pose.forward) == pytest.approx(0.0, abs=1e-12)
    # top view: x to the right of the image, y to its top
    pixels, _ = project_points(target + np.array([[0.5, 0, 0], [0, 0.5, 0]]), top, 640, 480)
    assert pixels[0, 0] > 320 and pixels[1, 1] < 240
    # a wider scene moves the camera back
    assert camera_pose("side", target, 3.0).distance == pytest.approx(3 * side.distance)
    # follow behind a robot heading +y
    assert camera_pose("follow", target, 1.0, yaw=math.pi / 2).eye[1] < target[1]


@pytest.mark.parametrize("preset", CAMERA_PRESETS)
def test_fitted_distance_keeps_every_env_in_the_picture_and_no_more(preset):
    rng = np.random.default_rng(0)
    centres = np.column_stack([rng.uniform(-4, 4, (9, 2)), np.full(9, 0.8)])
    target = np.array([0.0, 0.0, 0.8])
    radius = 0.9
    directions = rng.normal(size=(400, 3))
    surface = centres[:, None] + radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    pose = camera_pose(preset, target, radius, centres=centres, aspect=4 / 3)
    pixels, in_front = project_points(surface, pose, 640, 480)
    assert in_front.all()
    assert (pixels >= 0).all() and (pixels[..., 0] <= 640).all() and (pixels[..., 1] <= 480).all()
    closer = type(pose)(
        eye=target - 0.8 * pose.distance * pose.forward, look_at=target, up=pose.up,
        distance=0.8 * pose.distance, azimuth=pose.azimuth, elevation=pose.elevation,
    )
    pixels, in_front = project_points(surface, closer, 640, 480)
    outside = ~in_front | (pixels < 0).any(-1) | (pixels[..., 0] > 640) | (pixels[..., 1] > 480)
    assert outside.any()  # the fit is tight: 20 % closer cuts something off
    assert camera_pose(preset, target, radius, centres=centres, min_distance=100.0).distance == 100.0


def test_camera_zooms_out_but_never_in_until_reset(humanoid, humanoid_text):
    poses = poses_of(stepped(humanoid, 0, 0), stepped(humanoid, 0, 0))
    spread = poses.copy()
    spread[1, :, 1] += 6.0
    with FrameRenderer(humanoid_text, width=W, height=H, preset="top", envs=[0, 1]) as renderer:
        renderer.render(poses)
        near = renderer.camera.distance
        renderer.render(spread)
        far = renderer.camera.distance
        renderer.render(poses)
        assert far > 1.5 * near and renderer.camera.distance == far
        renderer.reset_camera()
        renderer.render(poses)
        assert renderer.camera.distance == pytest.approx(near)


def test_preset_names_are_case_insensitive_and_unknown_ones_fail_in_one_line(humanoid_text):
    assert parse_preset(" Follow ") == "follow"
    assert parse_preset("TOP") == "top"
    with pytest.raises(UnknownPresetError) as err:
        FrameRenderer(humanoid_text, preset="diagonal")
    msg = str(err.value)
    assert isinstance(err.value, RolloutError) and "\n" not in msg
    assert "'diagonal'" in msg and all(name in msg for name in CAMERA_PRESETS)
    with FrameRenderer(humanoid_text, width=W, height=H) as renderer, pytest.raises(UnknownPresetError):
        renderer.preset = "isometric"


def test_overlay_burns_step_and_reward_into_the_frame(humanoid, humanoid_text):
    poses = poses_of(stepped(humanoid, 0, 0), stepped(humanoid, 30, 1))
    with FrameRenderer(humanoid_text, width=W, height=H, envs=[0, 1], spacing=2.0) as plain:
        bare = plain.render(poses)
    with FrameRenderer(humanoid_text, width=W, height=H, envs=[0, 1], spacing=2.0, overlay=True) as renderer:
        caption = renderer.render(poses, step=120, reward=None)
        labelled = renderer.render(poses, step=120, reward=np.array([3.5, -1.25]))
        other = renderer.render(poses, step=121, reward=None)
    changed = np.abs(caption.astype(int) - bare.astype(int)).max(axis=-1) > 30
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    assert changed.sum() > 50
    assert rows.max() < H // 4 and cols.max() < W // 3  # the caption sits in the top-left corner
    assert not np.array_equal(caption, other)  # the step number is really drawn
    labels = np.abs(labelled.astype(int) - caption.astype(int)).max(axis=-1) > 30
    assert labels[:, : W // 2].sum() > 20 and labels[:, W // 2 :].sum() > 20  # one label above each env


def test_renders_a_state_message(humanoid, humanoid_text):
    State = get_type("rollout_msgs/msg/State")
    poses = poses_of(stepped(humanoid, 0, 0), stepped(humanoid, 40, 1))
    state = State(step=7, num_envs=2, num_bodies=poses.shape[1], body_poses=poses.reshape(-1))
    with FrameRenderer(humanoid_text, width=W, height=H, envs=[1]) as renderer:
        from_state = renderer.render(state)
    with FrameRenderer(humanoid_text, width=W, height=H, envs=[1]) as renderer:
        from_array = renderer.render(poses)
    np.testing.assert_array_equal(from_state, from_array)


def test_poses_of_another_robot_fail_in_one_line(humanoid_text):
    with FrameRenderer(humanoid_text, width=W, height=H, envs=[3]) as renderer:
        with pytest.raises(RenderError, match="5 bodies but the robot model has 13") as err:
            renderer.render(np.zeros((4, 5, 7), np.float32))
        assert "\n" not in str(err.value)
        with pytest.raises(RenderError, match="env 3 is not in the recording"):
            renderer.render(np.zeros((2, 13, 7), np.float32))


def test_model_with_missing_mesh_file_fails_in_one_line():
    text = """<mujoco><asset><mesh name="arm" file="arm_link.stl"/></asset>
      <worldbody><body><freejoint/><geom type="mesh" mesh="arm"/></body></worldbody></mujoco>"""
    with pytest.raises(RenderError) as err:
        FrameRenderer(text, width=W, height=H)
    assert "arm_link.stl" in str(err.value) and "\n" not in str(err.value)


def test_model_without_a_floor_gets_one():
    text = """<mujoco><worldbody><body pos="0 0 0.5"><freejoint/>
      <geom type="box" size="0.2 0.2 0.2" rgba="0.8 0.6 0.4 1"/></body></worldbody></mujoco>"""
    poses = np.array([[[0, 0, 0.5, 0, 0, 0, 1]]], np.float32)
    with FrameRenderer(text, width=W, height=H, preset="side") as renderer:
        frame = renderer.render(poses)
    assert robot_mask(frame).sum() > 300
    floor = frame[H - 20 :]  # the checker floor, not MuJoCo's black void
    assert floor.mean() > 20 and floor.std() > 3


def test_close_is_safe_twice_and_render_after_close_fails(humanoid_text):
    renderer = FrameRenderer(humanoid_text, width=W, height=H)
    renderer.close()
    renderer.close()
    with pytest.raises(RenderError, match="after close"):
        renderer.render(np.zeros((1, 13, 7), np.float32))


def test_larger_frames_than_the_models_framebuffer(humanoid, humanoid_text):
    assert humanoid.vis.global_.offwidth < 1280
    with FrameRenderer(humanoid_text, width=1280, height=720) as renderer:
        frame = renderer.render(poses_of(stepped(humanoid, 0, 0)))
    assert frame.shape == (720, 1280, 3) and robot_mask(frame).sum() > 2000


def test_gl_backend_choice_respects_the_user():
    assert gl_backends({"MUJOCO_GL": "EGL"}) == ["egl"]
    assert gl_backends({}) == ["osmesa", "egl"]
    assert gl_backends({"DISPLAY": ":0"}) == ["glfw", "osmesa", "egl"]
    assert gl_backends({"PYOPENGL_PLATFORM": "egl"})[0] == "egl"
    for bad in ("vulkan", "disable"):
        with pytest.raises(RenderError) as err:
            gl_backends({"MUJOCO_GL": bad})
        assert "\n" not in str(err.value) and "MUJOCO_GL" in str(err.value)


@pytest.mark.skipif(bool(os.environ.get("DISPLAY")), reason="needs a machine without a display")
def test_no_usable_gl_is_one_clear_line(humanoid_text):
    with pytest.raises(RenderError) as err:
        FrameRenderer(humanoid_text, width=W, height=H, backend="glfw")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("no OpenGL for offscreen rendering") and "glfw" in msg
    with FrameRenderer(humanoid_text, width=W, height=H) as renderer:  # a failed attempt leaves MuJoCo usable
        assert renderer.render(np.zeros((1, 13, 7), np.float32) + [0, 0, 1, 0, 0, 0, 1]).std() > 10


ARM_URDF = """<robot name="arm">
  <link name="base"><collision><geometry><box size="0.4 0.4 0.4"/></geometry></collision>
    <inertial><mass value="1"/><inertia ixx="0.1" iyy="0.1" izz="0.1" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="upper"><collision><origin xyz="0 0 0.3"/><geometry><cylinder radius="0.05" length="0.6"/></geometry>
    </collision><inertial><mass value="1"/><inertia ixx="0.1" iyy="0.1" izz="0.1" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <joint name="shoulder" type="revolute"><parent link="base"/><child link="upper"/><origin xyz="0 0 0.2"/>
    <axis xyz="0 1 0"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
</robot>"""


def test_urdf_robot_on_a_grid_gets_a_checker_floor():
    model = mujoco.MjModel.from_xml_string(ARM_URDF)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    poses = np.repeat(poses_of(data), 2, axis=0)  # MuJoCo fuses the fixed base into the world: one body
    assert poses.shape == (2, 1, 7)
    buried = poses.copy()
    buried[..., 2] -= 50.0  # the links out of sight, under the floor
    with FrameRenderer(ARM_URDF, model_format="urdf", width=W, height=H, envs=[0, 1], spacing=1.5) as renderer:
        frame = renderer.render(poses)
        empty = renderer.render(buried)
    floor = frame[H - 40 :].astype(int)
    assert floor.std() > 5  # a checker, not a flat colour: motion over it is visible
    links = np.abs(frame.astype(int) - empty.astype(int)).max(axis=-1) > 20
    assert links[:, : W // 2].sum() > 200 and links[:, W // 2 :].sum() > 200  # one link in each half


def test_fixed_base_bodies_are_drawn_for_every_env():
    # MuJoCo counts a body welded to the world as static scenery; each env still needs its own base
    text = """<mujoco><worldbody><geom type="plane" size="0 0 1"/>
      <body name="base" pos="0 0 0.2"><geom type="box" size="0.2 0.2 0.2" rgba="0.8 0.6 0.4 1"/>
        <body name="link" pos="0 0 0.2"><joint type="hinge" axis="0 1 0"/>
          <geom type="capsule" fromto="0 0 0 0 0 0.5" size="0.05" rgba="0.8 0.6 0.4 1"/></body></body>
      </worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(text)
    assert model.body_weldid[1] == 0
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    poses = np.repeat(poses_of(data), 2, axis=0)
    with FrameRenderer(text, width=W, height=H, preset="side", envs=[0, 1], spacing=1.5) as renderer:
        mask = robot_mask(renderer.render(poses))
    cols = np.flatnonzero(mask.any(axis=0))
    assert mask[:, : W // 2].sum() > 500 and mask[:, W // 2 :].sum() > 500
    assert abs(mask[:, : W // 2].sum() - mask[:, W // 2 :].sum()) < 0.2 * mask.sum()  # base and link in both
    assert cols.min() > 0 and cols.max() < W - 1
