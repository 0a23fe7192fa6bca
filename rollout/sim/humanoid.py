"""The embedded default env: N MuJoCo humanoids with Gymnasium's Humanoid-v5 semantics.

Same model file (Gymnasium's `humanoid.xml`), same physics calls (`mj_step` x frame_skip,
then `mj_rnePostConstraint`), same 348-long observation, same reward terms, termination,
1000-step time limit and reset noise as `gymnasium.make("Humanoid-v5")`. Env i seeded with
`seed + i` follows the trajectory of that Gymnasium env reset with `seed=seed + i` and given
the same actions (tests/test_sim_humanoid.py checks it).

Speed: the N simulations live in one `mujoco.batch.Batch` (MuJoCo 4), stepped on a pool of
native threads with no Python per env; observations and rewards are whole-array numpy over
the batch's stacked fields. Two things MuJoCo's batch does not compute are done per env on
a scratch `MjData` (about 10 us each): `cfrc_ext` (v5 observes contact forces; they come
from `mj_rnePostConstraint`, which needs the whole MjData) and the body poses of the new
state (after `mj_step` MuJoCo's kinematics describe an intermediate RK4 stage).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import mujoco
import mujoco.batch
import numpy as np

from rollout.errors import EnvError
from rollout.limits import check_allocation
from rollout.sim.mjlayout import MjLayout
from rollout.sim.protocol import EnvInfo, Poses, StepOutput

TERM_NAMES = ("reward_survive", "reward_forward", "reward_ctrl", "reward_contact")


def gymnasium_asset(name: str) -> Path:
    """Path of a model file shipped with Gymnasium's MuJoCo envs (without importing gymnasium)."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or not spec.submodule_search_locations:
        raise EnvError("the default env needs gymnasium's humanoid model: pip install 'gymnasium[mujoco]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "envs" / "mujoco" / "assets" / name
    if not path.is_file():
        raise EnvError(f"gymnasium does not ship {name} (looked at {path})")
    return path


class HumanoidEnv:
    """N parallel Humanoid-v5 envs; follows the `VectorEnv` protocol (rollout.sim.protocol).

    Observations [N, 348] float32 are qpos[2:], qvel, cinert[1:], cvel[1:],
    qfrc_actuator[6:] and cfrc_ext[1:], as Gymnasium's v5 with default options.
    """

    fresh_arrays = True  # reset/step/poses return new arrays

    def __init__(
        self,
        num_envs: int = 1,
        *,
        seed: int = 0,
        threads: int = 0,
        max_episode_steps: int = 1000,
        frame_skip: int = 5,
        forward_reward_weight: float = 1.25,
        ctrl_cost_weight: float = 0.1,
        contact_cost_weight: float = 5e-7,
        contact_cost_range: tuple[float, float] = (-np.inf, 10.0),
        healthy_reward: float = 5.0,
        terminate_when_unhealthy: bool = True,
        healthy_z_range: tuple[float, float] = (1.0, 2.0),
        reset_noise_scale: float = 1e-2,
        env_spacing: float = 2.0,
    ) -> None:
        """`threads`: native threads stepping the batch (0: one per CPU, at most `num_envs`).
        The rest are Gymnasium's Humanoid-v5 options, with its defaults."""
        if num_envs < 1:
            raise EnvError(f"num_envs must be at least 1, got {num_envs}")
        xml = gymnasium_asset("humanoid.xml")
        self.model = mujoco.MjModel.from_xml_path(str(xml))
        m = self.model
        self.num_envs = n = int(num_envs)
        self.frame_skip = int(frame_skip)
        self.max_episode_steps = int(max_episode_steps)
        self._w_forward = forward_reward_weight
        self._w_ctrl = ctrl_cost_weight
        self._w_contact = contact_cost_weight
        self._contact_range = contact_cost_range
        self._healthy_reward = healthy_reward
        self._terminate = terminate_when_unhealthy
        self._z_range = healthy_z_range
        self._noise = reset_noise_scale
        self._layout = MjLayout.of(m)
        self._seed = int(seed)

        # each env keeps its own MjData (about the model's buffer size) plus the loop's arrays
        per_env = m.nbuffer + m.nbody * (6 + 3 + 4) * 8 + 348 * 4
        check_allocation(n * per_env, f"num_envs {n} humanoids (about {per_env // 1024} KiB each)", EnvError)
        nthread = min(threads or os.cpu_count() or 1, n)
        # persistent: one MjData per env, so that contact forces can be read back per env
        self._batch = mujoco.batch.Batch(m, n, nthread=nthread, persistent=True)
        b = self._batch
        self._qpos, self._qvel, self._ctrl = b.bind("qpos"), b.bind("qvel"), b.bind("ctrl")
        self._cinert, self._cvel = b.bind("cinert"), b.bind("cvel")
        self._qfrc_actuator, self._xipos = b.bind("qfrc_actuator"), b.bind("xipos")
        self._xpos_out, self._xquat_out = b.bind("xpos"), b.bind("xquat")
        self._scratch = mujoco.MjData(m)
        self._mass = np.asarray(m.body_mass, dtype=np.float64)

        # per-env state kept between steps
        self._cfrc = np.zeros((n, m.nbody, 6))  # cfrc_ext of the state obs came from
        self._xpos = np.zeros((n, m.nbody, 3))  # kinematics of the current state
        self._xquat = np.zeros((n, m.nbody, 4))
        self._com = np.zeros((n, 2))  # mass centre as v5 measures it before the next step
        self._elapsed = np.zeros(n, np.int64)
        self._rngs: list[np.random.Generator] = []
        self._obs = np.zeros((n, 348), np.float32)
        self._closed = False

        self.info = EnvInfo(
            name="mujoco:Humanoid-v5",
            num_envs=n,
            obs_dim=348,
            act_dim=m.nu,
            dt=float(m.opt.timestep * self.frame_skip),
            body_names=self._layout.body_names,
            joint_names=self._layout.joint_names,
            action_names=self._layout.action_names,
            reward_term_names=TERM_NAMES,
            model_format="mjcf",
            model_text=xml.read_text(),
            env_spacing=env_spacing,
            action_low=self._layout.action_low,
            action_high=self._layout.action_high,
        )
        self.reset(self._seed)

    # -- protocol ---------------------------------------------------------------------

    def reset(self, seed: int) -> np.ndarray:
        """Reset every env, env i from `seed + i`; return obs [N, 348] float32."""
        self._seed = int(seed)
        # the same generator Gymnasium's reset(seed=...) builds: PCG64(SeedSequence(seed))
        self._rngs = [np.random.default_rng(self._seed + i) for i in range(self.num_envs)]
        self._reset_envs(np.arange(self.num_envs))
        return self._obs.copy()

    def step(self, action: np.ndarray) -> StepOutput:
        """Step every env by one control step (frame_skip physics steps); reset ended envs."""
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (self.num_envs, self.info.act_dim):
            raise EnvError(f"action has shape {action.shape}, expected ({self.num_envs}, {self.info.act_dim})")
        self._ctrl[:] = action
        com_before = self._com
        self._batch.step(nstep=self.frame_skip)
        self._after_physics()

        com_after = self._mass_centre()
        x_velocity = (com_after[:, 0] - com_before[:, 0]) / self.info.dt
        self._com = com_after
        z = self._qpos[:, 2]
        healthy = (self._z_range[0] < z) & (z < self._z_range[1])
        forward = self._w_forward * x_velocity
        survive = healthy * self._healthy_reward
        ctrl_cost = self._w_ctrl * np.square(self._ctrl).sum(axis=1)
        contact_cost = np.clip(self._w_contact * np.square(self._cfrc).sum(axis=(1, 2)), *self._contact_range)
        # v5's order of operations, so rewards match it to the last bit
        reward = (forward + survive) - (ctrl_cost + contact_cost)
        terms = np.stack([survive, forward, -ctrl_cost, -contact_cost]).astype(np.float32)
        terminated = ~healthy if self._terminate else np.zeros(self.num_envs, bool)
        self._elapsed += 1
        truncated = self._elapsed >= self.max_episode_steps

        self._obs = self._observe()
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            self._reset_envs(done)
        return StepOutput(
            obs=self._obs.copy(),
            reward=reward.astype(np.float32),
            terms=terms,
            terminated=terminated,
            truncated=truncated,
        )

    def poses(self) -> Poses:
        """Poses of the state the last returned obs came from (new arrays)."""
        return self._layout.poses(self._qpos, self._xpos, self._xquat)

    def close(self) -> None:
        """Drop the simulations; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._batch = None  # type: ignore[assignment]

    # -- internals --------------------------------------------------------------------

    def _reset_envs(self, ids: np.ndarray) -> None:
        """Reset envs `ids` as v5's reset_model does, each from its own generator."""
        m, s = self.model, self._noise
        # drawn per env, in v5's order (qpos then qvel), from that env's own stream
        noise = np.stack(
            [
                np.concatenate([self._rngs[i].uniform(-s, s, m.nq), self._rngs[i].uniform(-s, s, m.nv)])
                for i in ids
            ]
        )
        self._batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        self._qpos[ids] = m.qpos0 + noise[:, : m.nq]
        self._qvel[ids] = 0.0 + noise[:, m.nq :]
        self._batch.forward(ids)  # mj_forward, as v5's set_state
        self._xpos[ids] = self._xpos_out[ids]
        self._xquat[ids] = self._xquat_out[ids]
        self._cfrc[ids] = 0.0  # mj_resetData cleared it and mj_forward does not compute it
        self._com[ids] = self._mass_centre()[ids]
        self._elapsed[ids] = 0
        self._obs[ids] = self._observe(ids)

    def _after_physics(self) -> None:
        """Per env: contact forces as v5 reads them, and the new state's body poses."""
        m, d = self.model, self._scratch
        get_data, cfrc, xpos, xquat = self._batch.get_data, self._cfrc, self._xpos, self._xquat
        for i in range(self.num_envs):  # MuJoCo has no batched mj_rnePostConstraint
            get_data(i, d)
            mujoco.mj_rnePostConstraint(m, d)
            cfrc[i] = d.cfrc_ext
            mujoco.mj_kinematics(m, d)
            xpos[i] = d.xpos
            xquat[i] = d.xquat

    def _mass_centre(self) -> np.ndarray:
        """[N, 2] x, y of the mass centre from the batch's current xipos (as v5 reads it)."""
        return np.einsum("b,nbj->nj", self._mass, self._xipos[:, :, :2]) / self._mass.sum()

    def _observe(self, ids: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Observations [len(ids), 348] float32 assembled from the stacked fields."""
        parts = (
            self._qpos[ids, 2:],
            self._qvel[ids],
            self._cinert[ids, 1:].reshape(-1, 130),
            self._cvel[ids, 1:].reshape(-1, 78),
            self._qfrc_actuator[ids, 6:],
            self._cfrc[ids, 1:].reshape(-1, 78),
        )
        return np.concatenate(parts, axis=1, dtype=np.float32)
