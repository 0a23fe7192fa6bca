"""ProtoMotions adapters against stand-ins that follow ProtoMotions' env interface, one per version.

ProtoMotions is not on PyPI, so CI cannot run it; tests/test_protomotions_real.py runs the same
checks against the real thing where it is installed. The stand-ins reproduce what the adapters
rely on (read from ProtoMotions' source):
- main (2026): `config.reward_components` a dict of `MdpComponent`s (`compute_func`,
  `get_params()` with `weight` / `multiplicative`), `config.termination_components`; extras
  `raw_r/`, `scaled_r/`, `multiplicative_reward`, `termination/<name>` and `raw/rigid_body_pos`
  etc. (the state before the caller's reset); no auto-reset; `get_robot_state()` x, y, z, w.
- 3.1: the same dicts with components that have `function`, `weight`, `multiplicative`.
- 3.0: `config.reward_config`, no termination components, no `raw/` extras.
- 2.x: `step -> (obs, rew, reset, extras)`, `extras["terminate"]`, means in `extras["to_log"]`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rollout.bag import Bag
from rollout.errors import EnvError
from rollout.export import bag_to_npz, npz_to_bag
from rollout.recording import RolloutRecorder
from rollout.sim import make_env, run_steps
from rollout.sim.protomotions import ProtoMotionsV2Env, ProtoMotionsV3Env

BODIES = ["pelvis", "torso", "head"]
DOFS = ["hip", "knee"]
MJCF = '<mujoco model="standin"><worldbody><body name="pelvis"><freejoint/><geom size="0.1"/></body></worldbody></mujoco>'


class MdpComponent:
    """ProtoMotions main's component: a compute function and its static parameters."""

    def __init__(self, compute_func: object, **static_params: object) -> None:
        self.compute_func = compute_func
        self.static_params = static_params

    def get_params(self) -> dict:
        return dict(self.static_params)


class StandInEnv:
    """N point robots: action[0] pushes forward, action[1] lowers the root; the episode ends
    when the root drops below 0.5 m (terminated, "fell") or after `max_len` steps (time out).
    Reward: 2 x alive + effort + upright (upright multiplies, as ProtoMotions' multiplicative terms)."""

    def __init__(self, asset_dir: Path, num_envs: int = 4, max_len: int = 6, spacing: float = 0.0) -> None:
        self.num_envs = num_envs
        self.device = torch.device("cpu")
        self.dt = 1 / 30
        self.max_len = max_len
        self.spacing = spacing
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
        self.pos[ids, 0] += ids.float() * self.spacing  # where ProtoMotions' terrain puts them
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
        upright = self.yaw.cos()
        self.rew_buf[:] = 2.0 * alive + effort + upright
        fell = self.pos[:, 2] < 0.5
        self.terminate_buf[:] = fell
        self.reset_buf[:] = fell | (self.progress_buf >= self.max_len)
        return {"alive": alive, "effort": effort, "upright": upright, "fell": fell}

    def _v3_extras(self, r: dict[str, torch.Tensor], *, terminations: bool, raw_state: bool) -> dict:
        extras = {f"raw_r/{k}": r[k] for k in ("alive", "effort", "upright")}
        extras |= {"scaled_r/alive": 2.0 * r["alive"], "scaled_r/effort": r["effort"]}
        extras |= {"multiplicative_reward": r["upright"], "additive_reward": 2.0 * r["alive"] + r["effort"]}
        extras |= {"terminate": self.terminate_buf, "total_env_reward": self.rew_buf}
        if terminations:
            extras["termination/fell"] = r["fell"].float()
        if raw_state:
            rs = self._state()
            extras |= {
                "raw/rigid_body_pos": rs.rigid_body_pos.flatten(1),
                "raw/rigid_body_rot": rs.rigid_body_rot.flatten(1),
                "raw/dof_pos": rs.dof_pos,
            }
        return extras


class StandInV3(StandInEnv):
    """ProtoMotions main: MdpComponent dicts; every extra the adapter reads."""

    terminations = raw_state = True

    def __init__(self, asset_dir: Path, **kwargs: float) -> None:
        super().__init__(asset_dir, **kwargs)
        kin = SimpleNamespace(body_names=BODIES, dof_names=DOFS)
        self.robot_config = SimpleNamespace(kinematic_info=kin, number_of_actions=2, asset=self._asset)
        self.config = SimpleNamespace(
            reward_components={
                "alive": MdpComponent(torch.ones_like, weight=2.0),
                "effort": MdpComponent(torch.square, weight=1.0),
                "upright": MdpComponent(torch.cos, multiplicative=True),
            },
            termination_components={"fell": MdpComponent(torch.lt, terminate_on_true=True)},
        )

    def reset(self, env_ids: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], dict]:
        self._reset(env_ids)
        return self._obs(), {}

    def step(self, actions: torch.Tensor) -> tuple:
        r = self._physics(actions)
        extras = self._v3_extras(r, terminations=self.terminations, raw_state=self.raw_state)
        self.last_extras = {k: v.clone() for k, v in extras.items()}  # what the env reported, for the tests
        return self._obs(), self.rew_buf, self.reset_buf, self.terminate_buf, extras


class StandInV31(StandInV3):
    """ProtoMotions 3.1: components with `function`, `weight`, `multiplicative` attributes."""

    def __init__(self, asset_dir: Path, **kwargs: float) -> None:
        super().__init__(asset_dir, **kwargs)
        comp = lambda fn, w=0.0, m=False: SimpleNamespace(function=fn, weight=w, multiplicative=m)  # noqa: E731
        self.config = SimpleNamespace(
            reward_components={"alive": comp("ones", 2.0), "effort": comp("sq", 1.0), "upright": comp("cos", m=True), "off": comp(None)},
            termination_components={"fell": SimpleNamespace(function="lt")},
        )


class StandInV30(StandInV3):
    """ProtoMotions 3.0: `config.reward_config`; no termination components, no raw/ state extras."""

    terminations = raw_state = False

    def __init__(self, asset_dir: Path, **kwargs: float) -> None:
        super().__init__(asset_dir, **kwargs)
        comp = lambda fn, w=0.0, m=False: SimpleNamespace(function=fn, weight=w, multiplicative=m)  # noqa: E731
        self.config = SimpleNamespace(reward_config={"alive": comp("ones", 2.0), "effort": comp("sq", 1.0), "upright": comp("cos", m=True)})


class StandInV3Bare(StandInV3):
    """A v3 env whose config says nothing about its components: the names come from one step's extras."""

    def __init__(self, asset_dir: Path, **kwargs: float) -> None:
        super().__init__(asset_dir, **kwargs)
        self.config = SimpleNamespace()


class StandInV2(StandInEnv):
    def __init__(self, asset_dir: Path, **kwargs: float) -> None:
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
        r = self._physics(actions)
        to_log = {f"raw/{k}_mean": r[k].float().mean() for k in ("alive", "effort")}
        to_log["terminate_frac"] = self.terminate_buf.float().mean()
        return self._obs(), self.rew_buf, self.reset_buf, {"terminate": self.terminate_buf, "to_log": to_log}


def actions(n: int, t: int) -> np.ndarray:
    a = np.zeros((n, 2), np.float32)
    a[:, 0] = 1.0
    a[0, 1] = 1.0 if t >= 1 else 0.0  # env 0 sinks: terminated ("fell") at step 3
    return a


BOTH = ("alive", "effort", "upright", "scaled/alive", "scaled/effort", "multiplicative_reward")


@pytest.mark.parametrize("cls", [StandInV3, StandInV31, StandInV30, StandInV3Bare])
def test_every_v3_version_names_raw_scaled_and_multiplicative_terms(tmp_path: Path, cls: type) -> None:
    inner = cls(tmp_path)
    env = ProtoMotionsV3Env(inner)
    info = env.info
    assert (info.num_envs, info.obs_dim, info.act_dim) == (4, 4 + 4, 2)
    assert info.body_names == tuple(BODIES) and info.joint_names == tuple(DOFS)
    assert info.reward_term_names == BOTH  # a 3.1 component without a function ("off") is skipped
    assert info.termination_names == (("fell",) if inner.terminations else ())
    assert info.model_format == "mjcf" and info.model_text == MJCF
    assert info.dt == pytest.approx(1 / 30)


@pytest.mark.parametrize("cls", [StandInV3, StandInV31, StandInV30])
def test_recorded_terms_are_the_envs_values_and_add_up_to_the_reward(tmp_path: Path, cls: type) -> None:
    inner = cls(tmp_path, max_len=4)
    env = ProtoMotionsV3Env(inner)
    env.reset(0)
    for t in range(6):
        a = actions(4, t)
        out = env.step(a)
        terms = dict(zip(env.info.reward_term_names, out.terms))
        reported = inner.last_extras
        for name in ("alive", "effort", "upright"):
            np.testing.assert_array_equal(terms[name], reported[f"raw_r/{name}"].numpy())
        np.testing.assert_array_equal(terms["scaled/effort"], reported["scaled_r/effort"].numpy())
        np.testing.assert_array_equal(terms["multiplicative_reward"], reported["multiplicative_reward"].numpy())
        np.testing.assert_allclose(terms["effort"], -(a**2).sum(axis=1))
        np.testing.assert_allclose(terms["scaled/alive"], np.full(4, 2.0))
        # the total is the weighted terms plus the product of the multiplicative ones, exactly
        np.testing.assert_allclose(terms["scaled/alive"] + terms["scaled/effort"] + terms["multiplicative_reward"], out.reward, rtol=1e-6)


def test_raw_only_and_scaled_only_on_request(tmp_path: Path) -> None:
    raw = ProtoMotionsV3Env(StandInV3(tmp_path), terms="raw")
    assert raw.info.reward_term_names == ("alive", "effort", "upright")
    scaled = ProtoMotionsV3Env(StandInV3(tmp_path), terms="scaled")
    assert scaled.info.reward_term_names == ("alive", "effort")
    scaled.reset(0)
    np.testing.assert_allclose(scaled.step(actions(4, 0)).terms[0], np.full(4, 2.0))
    with pytest.raises(EnvError, match="terms must be"):
        ProtoMotionsV3Env(StandInV3(tmp_path), terms="weighted")  # type: ignore[arg-type]


def test_ended_envs_are_reset_with_their_reason_and_terminal_pose(tmp_path: Path) -> None:
    inner = StandInV3(tmp_path, max_len=5)
    env = ProtoMotionsV3Env(inner)
    recs = list(run_steps(env, lambda obs: actions(4, int(obs[0, 3])), seed=0, steps=6))
    ends = {(r.step, int(e)): (reason, r) for r in recs for e, reason in zip(r.episodes.env_ids, r.episodes.reason_names())}
    assert ends[(3, 0)][0] == "fell"  # env 0 sank below 0.5 m: its termination component fired
    assert ends[(4, 1)][0] == "truncated"  # env 1 hit the episode-length limit, which no component names
    fell = recs[3].episodes
    k = list(fell.env_ids).index(0)
    # the terminal pose is where env 0 was when it fell, not where the reset put it
    assert fell.final_poses is not None and fell.final_poses.base_pos[k, 2] < 0.5
    assert recs[4].poses.base_pos[0, 2] > 0.9  # the next record starts the new episode
    assert inner.reset_calls[-1] != [0, 1, 2, 3]  # only the ended envs were reset
    np.testing.assert_allclose(fell.final_poses.body_poses[k, :, 2] - fell.final_poses.base_pos[k, 2], [0.0, 0.3, 0.6], atol=1e-6)


def test_without_raw_state_extras_the_terminal_pose_is_read_before_the_reset(tmp_path: Path) -> None:
    env = ProtoMotionsV3Env(StandInV30(tmp_path))
    recs = list(run_steps(env, lambda obs: actions(4, int(obs[0, 3])), seed=0, steps=4))
    e = recs[3].episodes
    assert list(e.env_ids) == [0] and e.reason_names() == ["terminated"]  # 3.0 names no reasons
    assert e.final_poses is not None and e.final_poses.base_pos[0, 2] < 0.5


def test_a_bag_says_why_each_episode_ended_and_where(tmp_path: Path) -> None:
    env = ProtoMotionsV3Env(StandInV3(tmp_path, max_len=5))
    bag_path = RolloutRecorder(env, max_steps=6, out=tmp_path / "bag").run(lambda obs: actions(4, int(obs[0, 3])))
    with Bag(bag_path) as bag:
        (robot,) = bag.iter_decoded("/rollout/robot")
        events = list(bag.iter_decoded("/rollout/episodes"))
        terms = list(bag.iter_decoded("/rollout/reward_terms"))
    assert list(robot.reward_term_names) == list(BOTH)
    assert [t.name for t in terms[0].terms] == list(BOTH)
    first = events[0]
    assert (int(first.step), list(first.env_ids), list(first.reasons)) == (3, [0], ["fell"])
    assert int(first.num_bodies) == 3
    assert np.asarray(first.final_base_pos).reshape(-1, 3)[0, 2] < 0.5
    np.testing.assert_allclose(np.asarray(first.final_body_poses).reshape(1, 3, 7)[0, :, :3], np.asarray(first.final_base_pos)[None, :3] + [[0, 0, 0], [0, 0, 0.3], [0, 0, 0.6]], atol=1e-6)
    assert "truncated" in [r for e in events for r in e.reasons]
    npz = np.load(bag_to_npz(bag_path, tmp_path / "r.npz").path, allow_pickle=True)
    assert npz["info"][3]["end_reasons"] == {0: "fell"}
    assert npz["info"][0]["end_reasons"] == {}
    again = npz_to_bag(tmp_path / "r.npz", tmp_path / "again", allow_pickle=True)  # and back: the reasons survive
    with Bag(again) as bag:
        assert [list(e.reasons) for e in bag.iter_decoded("/rollout/episodes")] == [list(e.reasons) for e in events]


def test_v3_poses_keep_xyzw_and_root_is_the_base(tmp_path: Path) -> None:
    env = ProtoMotionsV3Env(StandInV3(tmp_path))
    env.reset(0)
    env.step(actions(4, 0))
    p = env.poses()
    assert p.body_poses.shape == (4, 3, 7) and p.joint_pos.shape == (4, 2)
    np.testing.assert_allclose(p.base_quat[:, 2:], np.tile([np.sin(0.05), np.cos(0.05)], (4, 1)), atol=1e-6)
    np.testing.assert_array_equal(p.base_pos, p.body_poses[:, 0, :3])


def test_envs_on_top_of_each_other_are_spread_and_envs_apart_drawn_where_they_are(tmp_path: Path) -> None:
    assert ProtoMotionsV3Env(StandInV3(tmp_path)).info.env_spacing == 2.0
    assert ProtoMotionsV3Env(StandInV3(tmp_path, spacing=25.0)).info.env_spacing == 0.0
    assert ProtoMotionsV3Env(StandInV3(tmp_path), env_spacing=3.0).info.env_spacing == 3.0


def test_flat_observations_split_back_into_protomotions_dict(tmp_path: Path) -> None:
    inner = StandInV3(tmp_path)
    env = ProtoMotionsV3Env(inner)
    flat = env.reset(0)
    parts = env.unflatten_obs(flat)
    want = inner._obs()
    assert list(parts) == list(want)
    for k in want:
        np.testing.assert_array_equal(parts[k], want[k].numpy())


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
            assert out.final_poses is not None and out.final_poses.base_pos[0, 2] < 0.5
    assert terminated
    p = env.poses()
    assert p.body_poses.shape == (4, 3, 7) and p.joint_pos.shape == (4, 2)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: d / "nothing.ckpt", "does not exist"),
        (lambda d: d, "is a directory"),
        (lambda d: ((d / "last.ckpt").write_bytes(b"x"), d / "last.ckpt")[1], "no resolved_configs_inference.pt beside it"),
    ],
)
def test_a_checkpoint_that_is_not_one_is_refused_in_one_line(tmp_path: Path, make: object, says: str) -> None:
    with pytest.raises(EnvError, match=says) as e:
        make_env(f"protomotions:{make(tmp_path)}", trust=True)  # type: ignore[operator]
    assert "\n" not in str(e.value)


def test_a_checkpoint_is_not_unpickled_unless_trusted(tmp_path: Path) -> None:
    (tmp_path / "last.ckpt").write_bytes(b"\x80\x04 not read")
    (tmp_path / "resolved_configs_inference.pt").write_bytes(b"\x80\x04 not read")
    with pytest.raises(EnvError, match="trust_checkpoint:=true") as e:
        make_env(f"protomotions:{tmp_path / 'last.ckpt'}")
    assert "pickles" in str(e.value) and "\n" not in str(e.value)


def test_an_untrusted_checkpoint_stops_the_sim_node_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "last.ckpt").write_bytes(b"\x80\x04 not read")
    (tmp_path / "resolved_configs_inference.pt").write_bytes(b"\x80\x04 not read")
    cmd = [sys.executable, "-m", "rollout.cli", "run", "sim", "--ros-args", "-p", f"env:=protomotions:{tmp_path / 'last.ckpt'}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "trust_checkpoint:=true" in lines[0], done.stderr


def test_an_env_with_its_own_policy_records_it(tmp_path: Path) -> None:
    from rollout.nodes.sim import SimParams, own_policy_spec
    from rollout.errors import PolicyError
    from rollout.policy import Policy

    env = ProtoMotionsV3Env(StandInV3(tmp_path))
    env.policy = Policy(lambda obs: np.tile([[0.5, 0.0]], (len(obs), 1)).astype(np.float32), name="ckpt/last.ckpt", format="protomotions", sha256="ab" * 32)
    bag = RolloutRecorder(env, max_steps=3, out=tmp_path / "bag").run("checkpoint")
    with Bag(bag) as b:
        (robot,) = b.iter_decoded("/rollout/robot")
        acts = list(b.iter_decoded("/rollout/action"))
    assert (robot.policy, robot.policy_sha256) == ("ckpt/last.ckpt", "ab" * 32)
    np.testing.assert_array_equal(np.asarray(acts[0].action).reshape(4, 2), np.tile([[0.5, 0.0]], (4, 1)))
    assert own_policy_spec(env, SimParams.policy) == "checkpoint"  # the sim node's default
    assert own_policy_spec(env, "zero") == "zero"  # a named policy wins
    with pytest.raises(PolicyError, match="has none"):
        RolloutRecorder(ProtoMotionsV3Env(StandInV3(tmp_path)), max_steps=1, out=tmp_path / "b2").run("checkpoint")


def test_a_trusted_checkpoint_needs_protomotions_and_configs_that_match_it(tmp_path: Path) -> None:
    import importlib.util

    (tmp_path / "last.ckpt").write_bytes(b"\x80\x04 not read")
    torch.save({"robot": None}, tmp_path / "resolved_configs_inference.pt")  # configs of no ProtoMotions version
    with pytest.raises(EnvError) as e:
        make_env(f"protomotions:{tmp_path / 'last.ckpt'}", trust=True)
    if importlib.util.find_spec("protomotions") is None:
        assert "needs ProtoMotions installed" in str(e.value)
    else:  # run against real ProtoMotions
        assert "does not match the ProtoMotions installed here" in str(e.value)
    assert "\n" not in str(e.value)


def test_independent_readers_see_the_reasons_and_terminal_poses(tmp_path: Path) -> None:
    """rosbags (Python) and, where Node.js and tests/js are set up, Foxglove's own decoders."""
    import json
    import shutil

    from rosbags.highlevel import AnyReader

    from rollout.bag import bag_files

    env = ProtoMotionsV3Env(StandInV3(tmp_path, max_len=5))
    bag_path = RolloutRecorder(env, max_steps=6, out=tmp_path / "bag").run(lambda obs: actions(4, int(obs[0, 3])))
    with Bag(bag_path) as bag:
        ours = [(list(e.reasons), np.asarray(e.final_body_poses).tolist()) for e in bag.iter_decoded("/rollout/episodes")]
    with AnyReader([bag_path]) as reader:
        (conn,) = [c for c in reader.connections if c.topic == "/rollout/episodes"]
        theirs = [reader.deserialize(data, conn.msgtype) for _, _, data in reader.messages([conn])]
    assert [(list(m.reasons), m.final_body_poses.tolist()) for m in theirs] == ours
    assert ours[0][0] == ["fell"]
    js = Path(__file__).parent / "js"
    node = shutil.which("node")
    if node is None or not (js / "node_modules" / "@foxglove" / "rosmsg2-serialization").is_dir():
        pytest.skip("Node.js or tests/js/node_modules missing: Foxglove's decoders not run")
    done = subprocess.run([node, str(js / "decode_bag.mjs"), *map(str, bag_files(bag_path))], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    fox = json.loads(done.stdout)["messages"]["/rollout/episodes"]
    assert [(m["value"]["reasons"], m["value"]["num_bodies"]) for m in fox] == [(r, 3) for r, _ in ours]
    np.testing.assert_allclose(fox[0]["value"]["final_body_poses"], ours[0][1], rtol=1e-6)
