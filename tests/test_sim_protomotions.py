"""ProtoMotions adapters against stand-ins that follow ProtoMotions' documented env interface.

ProtoMotions itself (Isaac Gym/Lab, Genesis or Newton on a GPU) is not run here; the stand-ins
reproduce what the adapters rely on: v3 `step -> (obs dict, rew, reset, terminate, extras)`
with `extras["raw_r/<name>"]`, no auto-reset, `simulator.get_robot_state()` in x, y, z, w;
v2 `step -> (obs, rew, reset, extras)` with `extras["terminate"]` and `extras["to_log"]` means.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rollout.sim import run_steps
from rollout.sim.protomotions import ProtoMotionsV2Env, ProtoMotionsV3Env

BODIES = ["pelvis", "torso", "head"]
DOFS = ["hip", "knee"]
MJCF = '<mujoco model="standin"><worldbody><body name="pelvis"><freejoint/><geom size="0.1"/></body></worldbody></mujoco>'


class StandInEnv:
    """N point robots: action[0] pushes forward, action[1] lowers the root; the episode ends
    when the root drops below 0.5 m (terminated) or after `max_len` steps (time out)."""

    def __init__(self, asset_dir: Path, num_envs: int = 4, max_len: int = 6) -> None:
        self.num_envs = num_envs
        self.device = torch.device("cpu")
        self.dt = 1 / 30
        self.max_len = max_len
        (asset_dir / "standin.xml").write_text(MJCF)
        self._asset = SimpleNamespace(asset_root=str(asset_dir), asset_file_name="standin.xml")
        self.pos = torch.zeros(num_envs, 3)
        self.yaw = torch.zeros(num_envs)
        self.dof = torch.zeros(num_envs, 2)
        self.progress_buf = torch.zeros(num_envs, dtype=torch.long)
        # ProtoMotions reuses these buffers from step to step
        self.rew_buf = torch.zeros(num_envs)
        self.reset_buf = torch.zeros(num_envs, dtype=torch.bool)
        self.terminate_buf = torch.zeros(num_envs, dtype=torch.bool)
        self.reset_calls: list[list[int]] = []
        self.simulator = SimpleNamespace(get_robot_state=self._state)

    def _state(self) -> SimpleNamespace:
        offsets = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.3], [0.0, 0.0, 0.6]])
        half = self.yaw / 2
        quat = torch.stack([torch.zeros_like(half), torch.zeros_like(half), half.sin(), half.cos()], dim=-1)  # x, y, z, w
        return SimpleNamespace(
            rigid_body_pos=self.pos[:, None, :] + offsets[None],
            rigid_body_rot=quat[:, None, :].expand(-1, 3, -1).clone(),
            dof_pos=self.dof.clone(),
        )

    def _obs(self) -> dict[str, torch.Tensor]:
        return {
            "self_obs": torch.cat([self.pos, self.progress_buf[:, None].float()], dim=1),
            "dof_obs": torch.stack([self.dof, -self.dof], dim=1),  # [N, 2, 2]: flattened by the adapter
        }

    def _reset(self, env_ids: torch.Tensor | None) -> None:
        ids = torch.arange(self.num_envs) if env_ids is None else env_ids
        self.reset_calls.append(ids.tolist())
        self.pos[ids] = torch.rand(len(ids), 3) * 0.1 + torch.tensor([0.0, 0.0, 1.0])
        self.yaw[ids] = 0.0
        self.dof[ids] = 0.0
        self.progress_buf[ids] = 0

    def _physics(self, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        self.pos[:, 0] += actions[:, 0] * self.dt
        self.pos[:, 2] -= actions[:, 1].clamp(min=0) * 0.2
        self.yaw += 0.1
        self.dof += actions
        self.progress_buf += 1
        alive = torch.ones(self.num_envs)
        effort = -(actions**2).sum(dim=1)
        self.rew_buf[:] = 2.0 * alive + effort
        self.terminate_buf[:] = self.pos[:, 2] < 0.5
        self.reset_buf[:] = self.terminate_buf | (self.progress_buf >= self.max_len)
        return {"alive": alive, "effort": effort}


class StandInV3(StandInEnv):
    def __init__(self, asset_dir: Path, **kwargs: int) -> None:
        super().__init__(asset_dir, **kwargs)
        kin = SimpleNamespace(body_names=BODIES, dof_names=DOFS)
        self.robot_config = SimpleNamespace(kinematic_info=kin, number_of_actions=2, asset=self._asset)
        fn = "2.0"
        self.config = SimpleNamespace(
            reward_components={"alive": SimpleNamespace(function=fn), "effort": SimpleNamespace(function=fn), "off": SimpleNamespace(function=None)}
        )

    def reset(self, env_ids: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], dict]:
        self._reset(env_ids)
        return self._obs(), {}

    def step(self, actions: torch.Tensor) -> tuple:
        terms = self._physics(actions)
        extras = {f"raw_r/{k}": v for k, v in terms.items()}
        extras["scaled_r/alive"] = 2.0 * terms["alive"]
        extras["scaled_r/effort"] = terms["effort"]
        return self._obs(), self.rew_buf, self.reset_buf, self.terminate_buf, extras


class StandInV2(StandInEnv):
    def __init__(self, asset_dir: Path, **kwargs: int) -> None:
        super().__init__(asset_dir, **kwargs)
        robot = SimpleNamespace(body_names=BODIES, dof_names=DOFS, number_of_actions=2, asset=self._asset)
        self.config = SimpleNamespace(robot=robot)
        self.simulator = SimpleNamespace(
            get_bodies_state=lambda: self._state(), get_dof_state=lambda: SimpleNamespace(dof_pos=self.dof.clone())
        )

    def reset(self, env_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        self._reset(env_ids)
        return self._obs()

    def step(self, actions: torch.Tensor) -> tuple:
        terms = self._physics(actions)
        to_log = {f"raw/{k}_mean": v.mean() for k, v in terms.items()}
        to_log["terminate_frac"] = self.terminate_buf.float().mean()
        return self._obs(), self.rew_buf, self.reset_buf, {"terminate": self.terminate_buf, "to_log": to_log}


def actions(n: int, t: int) -> np.ndarray:
    a = np.zeros((n, 2), np.float32)
    a[:, 0] = 1.0
    a[0, 1] = 1.0 if t >= 1 else 0.0  # env 0 sinks: terminated after a few steps
    return a


def test_v3_describes_the_robot_and_its_reward_terms(tmp_path: Path) -> None:
    env = ProtoMotionsV3Env(StandInV3(tmp_path), env_spacing=1.5)
    info = env.info
    assert (info.num_envs, info.obs_dim, info.act_dim) == (4, 4 + 4, 2)
    assert info.body_names == tuple(BODIES) and info.joint_names == tuple(DOFS)
    assert info.reward_term_names == ("alive", "effort")  # components without a function are skipped
    assert info.model_format == "mjcf" and info.model_text == MJCF
    assert info.dt == pytest.approx(1 / 30) and info.env_spacing == 1.5


def test_v3_steps_report_per_env_terms_and_reset_ended_envs(tmp_path: Path) -> None:
    inner = StandInV3(tmp_path, max_len=4)
    env = ProtoMotionsV3Env(inner)
    env.reset(0)
    seen_terminated = seen_truncated = False
    for t in range(6):
        a = actions(4, t)
        out = env.step(a)
        np.testing.assert_allclose(out.terms[0], np.ones(4))
        np.testing.assert_allclose(out.terms[1], -(a**2).sum(axis=1))
        np.testing.assert_allclose(out.reward, 2.0 - (a**2).sum(axis=1))
        ended = np.flatnonzero(out.terminated | out.truncated)
        if ended.size:
            assert inner.reset_calls[-1] == ended.tolist()  # the adapter resets exactly the ended envs
            assert (out.obs[ended, 3] == 0).all()  # and returns their first observation
        seen_terminated |= bool(out.terminated[0])
        seen_truncated |= bool(out.truncated[1:].any() and not out.terminated[1:].any())
    assert seen_terminated and seen_truncated


def test_v3_scaled_terms_on_request(tmp_path: Path) -> None:
    env = ProtoMotionsV3Env(StandInV3(tmp_path), terms="scaled")
    env.reset(0)
    out = env.step(actions(4, 0))
    np.testing.assert_allclose(out.terms[0], np.full(4, 2.0))


def test_v3_poses_keep_xyzw_and_root_is_the_base(tmp_path: Path) -> None:
    env = ProtoMotionsV3Env(StandInV3(tmp_path))
    env.reset(0)
    env.step(actions(4, 0))
    p = env.poses()
    assert p.body_poses.shape == (4, 3, 7) and p.joint_pos.shape == (4, 2)
    np.testing.assert_allclose(p.base_quat[:, 2:], np.tile([np.sin(0.05), np.cos(0.05)], (4, 1)), atol=1e-6)
    np.testing.assert_array_equal(p.base_pos, p.body_poses[:, 0, :3])


def test_v3_in_the_loop_gives_episode_events_and_stable_records(tmp_path: Path) -> None:
    env = ProtoMotionsV3Env(StandInV3(tmp_path, max_len=3))
    recs = list(run_steps(env, lambda obs: np.ones((4, 2), np.float32) * [1, 0], seed=5, steps=7))
    lengths = [int(n) for r in recs for n in r.episodes.lengths]
    assert lengths and set(lengths) == {3}
    assert [r.obs[1, 3] for r in recs] == [0, 1, 2, 0, 1, 2, 0]  # ProtoMotions' buffers were copied
    first = list(run_steps(ProtoMotionsV3Env(StandInV3(tmp_path)), lambda o: np.zeros((4, 2), np.float32), seed=9, steps=1))
    again = list(run_steps(ProtoMotionsV3Env(StandInV3(tmp_path)), lambda o: np.zeros((4, 2), np.float32), seed=9, steps=1))
    np.testing.assert_array_equal(first[0].obs, again[0].obs)  # reset(seed) seeds torch


def test_v2_terms_are_batch_means_from_to_log(tmp_path: Path) -> None:
    inner = StandInV2(tmp_path, max_len=4)
    env = ProtoMotionsV2Env(inner)
    assert env.info.reward_term_names == ("alive", "effort")  # found by one probing step
    assert env.info.body_names == tuple(BODIES) and env.info.model_text == MJCF
    env.reset(0)
    terminated = False
    for t in range(5):
        a = actions(4, t)
        out = env.step(a)
        np.testing.assert_allclose(out.terms[1], np.full(4, -(a**2).sum(axis=1).mean()), rtol=1e-6)
        terminated |= bool(out.terminated[0])
        if out.terminated[0]:
            assert inner.reset_calls[-1][0] == 0
    assert terminated
    p = env.poses()
    assert p.body_poses.shape == (4, 3, 7) and p.joint_pos.shape == (4, 2)
