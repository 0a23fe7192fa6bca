"""The embedded humanoid is Gymnasium's Humanoid-v5, step for step, only batched."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from rollout.sim.humanoid import TERM_NAMES, HumanoidEnv


def gym_envs(n: int, seed: int, **kwargs: object) -> tuple[list[gym.Env], np.ndarray]:
    envs = [gym.make("Humanoid-v5", **kwargs) for _ in range(n)]
    obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)])
    return envs, obs


def step_gym(envs: list[gym.Env], action: np.ndarray) -> tuple[np.ndarray, ...]:
    """Step each env; reset ended ones like our env does. Returns obs, reward, terms, term, trunc."""
    rows = []
    for env, a in zip(envs, action):
        obs, reward, terminated, truncated, info = env.step(a)
        terms = [info[k] for k in TERM_NAMES]
        if terminated or truncated:
            obs, _ = env.reset()
        rows.append((obs, reward, terms, terminated, truncated))
    obs, reward, terms, terminated, truncated = zip(*rows)
    return np.stack(obs), np.array(reward), np.array(terms).T, np.array(terminated), np.array(truncated)


def test_matches_gymnasium_step_for_step_including_resets() -> None:
    n, seed = 3, 11
    env = HumanoidEnv(n, seed=seed)
    envs, gym_obs = gym_envs(n, seed)
    np.testing.assert_allclose(env.reset(seed), gym_obs, rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(0)
    resets = 0
    contact_seen = False
    for t in range(250):
        action = rng.uniform(-0.4, 0.4, (n, 17)).astype(np.float32)
        out = env.step(action)
        obs, reward, terms, terminated, truncated = step_gym(envs, action)
        np.testing.assert_array_equal(out.terminated, terminated, err_msg=f"step {t}")
        np.testing.assert_array_equal(out.truncated, truncated, err_msg=f"step {t}")
        np.testing.assert_allclose(out.reward, reward, rtol=1e-5, atol=1e-5, err_msg=f"step {t}")
        np.testing.assert_allclose(out.terms, terms, rtol=1e-5, atol=1e-5, err_msg=f"step {t}")
        scale = 1.0 + np.abs(obs).max(axis=1, keepdims=True)  # contact forces reach the thousands
        np.testing.assert_allclose(out.obs / scale, obs / scale, rtol=0, atol=1e-6, err_msg=f"step {t}")
        resets += int(terminated.sum())
        contact_seen |= bool((terms[3] < 0).any())
    assert resets >= 3, "the run should cover falls and automatic resets"
    assert contact_seen, "the run should cover contact forces (v5 observes them)"


def test_truncates_at_the_time_limit_like_gymnasiums_wrapper() -> None:
    kwargs = dict(max_episode_steps=7, terminate_when_unhealthy=False)
    env = HumanoidEnv(2, seed=5, **kwargs)
    envs, _ = gym_envs(2, 5, **kwargs)
    ends = []
    for t in range(16):
        action = np.full((2, 17), 0.1, np.float32)
        out = env.step(action)
        obs, _, _, _, truncated = step_gym(envs, action)
        np.testing.assert_array_equal(out.truncated, truncated)
        np.testing.assert_allclose(out.obs, obs, rtol=1e-5, atol=1e-4)
        if out.truncated.any():
            ends.append(t + 1)
            assert not out.terminated.any()
    assert ends == [7, 14]


def test_same_seed_same_run_other_seed_other_run() -> None:
    def run(seed: int, threads: int = 0) -> np.ndarray:
        env = HumanoidEnv(4, seed=seed, threads=threads)
        rng = np.random.default_rng(1)
        out = [env.reset(seed)]
        for _ in range(60):
            out.append(env.step(rng.uniform(-0.4, 0.4, (4, 17)).astype(np.float32)).obs)
        return np.stack(out)

    a = run(3)
    np.testing.assert_array_equal(a, run(3))
    np.testing.assert_array_equal(a, run(3, threads=1))  # threads never change results
    assert not np.array_equal(a, run(4))


def test_env_i_is_seeded_with_seed_plus_i() -> None:
    wide = HumanoidEnv(3, seed=20).reset(20)
    alone = HumanoidEnv(1, seed=22).reset(22)
    np.testing.assert_array_equal(wide[2], alone[0])


def test_poses_are_those_of_the_state_the_obs_came_from() -> None:
    env = HumanoidEnv(2, seed=0)
    (g0, g1), _ = gym_envs(2, 0)
    m = g0.unwrapped.model
    d = mujoco.MjData(m)
    rng = np.random.default_rng(2)
    for _ in range(30):
        action = rng.uniform(-0.4, 0.4, (2, 17)).astype(np.float32)
        env.step(action)
        step_gym([g0, g1], action)
        poses = env.poses()
        for i, g in enumerate((g0, g1)):
            d.qpos[:] = g.unwrapped.data.qpos
            mujoco.mj_kinematics(m, d)
            np.testing.assert_allclose(poses.base_pos[i], d.qpos[:3], atol=1e-5)
            q = np.roll(d.qpos[3:7], -1)  # x, y, z, w, normalized as MuJoCo uses it
            np.testing.assert_allclose(poses.base_quat[i], q / np.linalg.norm(q), atol=1e-6)
            np.testing.assert_allclose(poses.joint_pos[i], d.qpos[7:], atol=1e-5)
            np.testing.assert_allclose(poses.body_poses[i, :, :3], d.xpos[1:], atol=1e-5)
            np.testing.assert_allclose(poses.body_poses[i, :, 3:], np.roll(d.xquat[1:], -1, axis=1), atol=1e-5)
    # the torso is the floating base
    np.testing.assert_allclose(poses.body_poses[:, 0, :3], poses.base_pos, atol=1e-5)


def test_info_describes_the_model() -> None:
    env = HumanoidEnv(2, seed=0)
    info = env.info
    assert (info.name, info.num_envs, info.obs_dim, info.act_dim) == ("mujoco:Humanoid-v5", 2, 348, 17)
    assert info.dt == pytest.approx(0.015)
    assert info.reward_term_names == TERM_NAMES
    model = mujoco.MjModel.from_xml_string(info.model_text)
    assert info.model_format == "mjcf"
    assert info.body_names[0] == "torso" and len(info.body_names) == model.nbody - 1 == 13
    assert len(info.joint_names) == 17 and "root" not in info.joint_names
    assert info.action_names == tuple(model.actuator(i).name for i in range(model.nu))
    assert info.action_names != info.joint_names  # actuators are not in joint order
    np.testing.assert_array_equal(info.action_low, np.full(17, -0.4, np.float32))
    assert info.env_spacing > 0
    poses = env.poses()
    assert poses.body_poses.shape == (2, 13, 7) and poses.joint_pos.shape == (2, 17)


def test_returned_arrays_are_never_written_again() -> None:
    env = HumanoidEnv(2, seed=0)
    first = env.step(np.zeros((2, 17), np.float32))
    poses = env.poses()
    kept = (first.obs.copy(), first.reward.copy(), first.terms.copy(), poses.body_poses.copy())
    for _ in range(3):
        env.step(np.full((2, 17), 0.3, np.float32))
        env.poses()
    for a, b in zip(kept, (first.obs, first.reward, first.terms, poses.body_poses)):
        np.testing.assert_array_equal(a, b)


def test_wrong_action_shape_is_one_line() -> None:
    from rollout.errors import EnvError

    env = HumanoidEnv(2, seed=0)
    with pytest.raises(EnvError, match=r"expected \(2, 17\)"):
        env.step(np.zeros((2, 16), np.float32))
