"""What Foxglove's 3D panel gets from a real recording: /robot_description is a URDF whose links
are exactly the /tf child frames, /tf puts every body where the State says it is (shifted to its
env's place in the grid), and a model that cannot become a URDF still gives a usable bag."""

from __future__ import annotations

import dataclasses
import io
import logging
from pathlib import Path

import numpy as np
import pytest

from rollout import RolloutRecorder, make_policy
from rollout.bag import Bag
from rollout.model import env_grid_offsets, quat_to_matrix
from rollout.sim.synthetic import SyntheticEnv
from recordings import record_humanoid

yourdfpy = pytest.importorskip("yourdfpy")

TF_ENVS = (0, 2)


@pytest.fixture(scope="module")
def bag_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_humanoid(tmp_path_factory.mktemp("bags") / "run", num_envs=4, steps=20, seed=3, tf_envs=TF_ENVS)


def pose_matrix(translation: object, rotation: object) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = quat_to_matrix(np.array([rotation.x, rotation.y, rotation.z, rotation.w]))
    t[:3, 3] = [translation.x, translation.y, translation.z]
    return t


def test_tf_child_frames_are_the_links_of_the_recorded_urdf(bag_path: Path) -> None:
    with Bag(bag_path) as bag:
        assert bag.topics["/robot_description"].latched and bag.topics["/robot_description"].count == 1
        urdf = bag.decode("/robot_description", 0).data
        robot = yourdfpy.URDF.load(io.StringIO(urdf), load_meshes=False, build_collision_scene_graph=False)
        body_names = bag.decode("/rollout/robot", 0).body_names
        links = {link.name for link in robot.robot.links} - {"world"}
        joints = {(j.parent, j.child) for j in robot.robot.joints}
        assert links == {f"env{k}/{b}" for k in TF_ENVS for b in body_names}
        for i in range(bag.count("/tf")):
            tf = bag.decode("/tf", i).transforms
            assert sorted(t.child_frame_id for t in tf) == sorted(links)
            assert {(t.header.frame_id, t.child_frame_id) for t in tf} == joints


def test_tf_chain_puts_every_body_where_the_state_says(bag_path: Path) -> None:
    with Bag(bag_path) as bag:
        robot = bag.decode("/rollout/robot", 0)
        offsets = env_grid_offsets(robot.num_envs, robot.env_spacing)
        assert np.abs(offsets[list(TF_ENVS)]).max() > 0  # the shown envs stand apart
        last = bag.count("/tf") - 1
        tf = bag.decode("/tf", last)
        state = bag.decode("/rollout/state", last)  # one of each per step
        assert state.header.stamp == tf.transforms[0].header.stamp and bag.count("/rollout/state") == last + 1
        local = {
            t.child_frame_id: (t.header.frame_id, pose_matrix(t.transform.translation, t.transform.rotation))
            for t in tf.transforms
        }

        def world(frame: str) -> np.ndarray:
            parent, m = local[frame]
            return m if parent == "world" else world(parent) @ m

        poses = state.body_poses.reshape(state.num_envs, state.num_bodies, 7)
        for k in TF_ENVS:
            for b, name in enumerate(robot.body_names):
                m = world(f"env{k}/{name}")
                np.testing.assert_allclose(m[:3, 3], poses[k, b, :3] + offsets[k], atol=1e-5)
                np.testing.assert_allclose(m[:3, :3], quat_to_matrix(poses[k, b, 3:].astype(np.float64)), atol=1e-5)


def test_a_model_that_cannot_become_urdf_warns_and_records_everything_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = SyntheticEnv(3, obs_dim=5, act_dim=2, num_bodies=4, num_joints=2)
    env.info = dataclasses.replace(env.info, model_format="mjcf", model_text="<mujoco><worldbody><body>")
    policy = make_policy("zero", obs_dim=5, act_dim=2)
    with caplog.at_level(logging.WARNING, logger="rollout.messages"):
        path = RolloutRecorder(env, max_steps=5, out=tmp_path / "run", tf_envs=(0, 1)).run(policy)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot be converted to URDF" in warnings[0]
    assert "/robot_description" in warnings[0] and "/tf" in warnings[0]
    with Bag(path) as bag:
        assert "/robot_description" not in bag.topics and "/tf" not in bag.topics
        assert [bag.topics[t].count for t in ("/rollout/robot", "/rollout/state", "/rollout/base_poses")] == [1, 5, 5]
        assert bag.decode("/rollout/robot", 0).model == "<mujoco><worldbody><body>"
