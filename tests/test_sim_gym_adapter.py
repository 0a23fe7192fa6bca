"""Gymnasium vector envs through the adapter: same numbers as Gymnasium, reward terms, poses."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rollout.errors import EnvError
from rollout.sim.adapters import GymVectorEnv

ANT_TERMS = {"reward_forward", "reward_ctrl", "reward_contact", "reward_survive"}


def test_ant_matches_gymnasium_with_terms_and_same_step_resets() -> None:
    n, seed = 3, 4
    env = GymVectorEnv("Ant-v5", num_envs=n, seed=seed)
    info = env.info
    assert info.name == "gym:Ant-v5" and (info.obs_dim, info.act_dim) == (105, 8)
    assert set(info.reward_term_names) == ANT_TERMS
    assert info.model_format == "mjcf" and mujoco.MjModel.from_xml_string(info.model_text).nu == 8
    assert info.dt == pytest.approx(0.05) and info.body_names[0] == "torso"

    singles = [gym.make("Ant-v5") for _ in range(n)]
    ref = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(singles)])
    np.testing.assert_allclose(env.reset(seed), ref, rtol=1e-5, atol=1e-5)
    rng = np.random.default_rng(0)
    ended = 0
    for t in range(120):
        action = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
        out = env.step(action)
        for i, e in enumerate(singles):
            obs, reward, term, trunc, inf = e.step(action[i])
            assert out.reward[i] == pytest.approx(reward, rel=1e-5, abs=1e-5)
            for k, name in enumerate(info.reward_term_names):
                assert out.terms[k, i] == pytest.approx(inf[name], rel=1e-5, abs=1e-5), (t, name)
            assert (out.terminated[i], out.truncated[i]) == (term, trunc)
            if term or trunc:
                obs, _ = e.reset()
                ended += 1
            np.testing.assert_allclose(out.obs[i], obs, rtol=1e-4, atol=1e-4)
    assert ended >= 1  # Ant flips or leaves its healthy range within this run under random actions


def test_poses_come_from_each_envs_mujoco_state() -> None:
    env = GymVectorEnv("Ant-v5", num_envs=2, seed=0)
    env.reset(0)
    for _ in range(5):
        env.step(np.full((2, 8), 0.5, np.float32))
    poses = env.poses()
    inner = env._env.envs[1].unwrapped  # noqa: SLF001 - the wrapped env is what we compare with
    np.testing.assert_allclose(poses.base_pos[1], inner.data.qpos[:3], atol=1e-6)
    np.testing.assert_allclose(poses.base_quat[1], np.roll(inner.data.qpos[3:7], -1), atol=1e-6)
    d = mujoco.MjData(inner.model)
    d.qpos[:] = inner.data.qpos
    mujoco.mj_kinematics(inner.model, d)
    np.testing.assert_allclose(poses.body_poses[1, :, :3], d.xpos[1:], atol=1e-6)
    assert poses.body_poses.shape == (2, len(env.info.body_names), 7)


def test_a_vector_env_you_built_works_if_it_resets_in_the_same_step() -> None:
    vec = SyncVectorEnv([lambda: gym.make("Hopper-v5") for _ in range(2)], autoreset_mode=AutoresetMode.DISABLED)
    env = GymVectorEnv(vec, seed=1)
    assert env.info.name == "gym:Hopper-v5" and env.info.num_envs == 2
    assert env.info.reward_term_names == ("reward_forward", "reward_ctrl", "reward_survive")
    env.reset(1)
    dones = 0
    for _ in range(80):
        out = env.step(np.full((2, 3), 1.0, np.float32))
        dones += int((out.terminated | out.truncated).sum())
        assert np.isfinite(out.obs).all()
    assert dones >= 1  # full torque topples the hopper; DISABLED mode is reset by the adapter


def test_next_step_autoreset_and_discrete_actions_are_refused_in_one_line() -> None:
    vec = SyncVectorEnv([lambda: gym.make("Hopper-v5")], autoreset_mode=AutoresetMode.NEXT_STEP)
    with pytest.raises(EnvError) as e:
        GymVectorEnv(vec)
    assert "SAME_STEP" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(EnvError, match="Discrete actions"):
        GymVectorEnv("CartPole-v1", num_envs=1)
    with pytest.raises(EnvError) as e:
        GymVectorEnv("NoSuchEnv-v9", num_envs=1)
    assert "NoSuchEnv-v9" in str(e.value) and "\n" not in str(e.value)


def test_env_without_mujoco_has_empty_poses() -> None:
    env = GymVectorEnv("Pendulum-v1", num_envs=2, seed=0)
    env.reset(0)
    out = env.step(np.zeros((2, 1), np.float32))
    assert out.terms.shape == (0, 2) and env.info.model_format == ""
    p = env.poses()
    assert p.body_poses.shape == (2, 0, 7) and (p.base_quat[:, 3] == 1).all()
