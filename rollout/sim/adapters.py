"""Gymnasium vector envs as `VectorEnv`s (rollout.sim.protocol).

`GymVectorEnv("Ant-v5", num_envs=8, seed=0)` builds a `SyncVectorEnv` that resets ended envs
in the same step (`AutoresetMode.SAME_STEP`, our protocol's convention); a vector env you built
yourself works too if it uses SAME_STEP or DISABLED autoreset (NEXT_STEP returns an extra
transition per episode, which would misalign obs, actions and rewards, so it is refused).

Reward terms are the per-env `info` entries whose names start with `reward_` (MuJoCo envs
report them; on the step that ends an episode Gymnasium moves them to `info["final_info"]`,
which is read too). For MuJoCo envs in a `SyncVectorEnv` the poses come from each env's
`MjData` (kinematics recomputed on a scratch copy, because after `mj_step` MuJoCo's body
poses describe an intermediate stage) and the model text is the env's MJCF file; other envs
have no poses to draw. Stepping is Gymnasium's: one Python call per env per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rollout.errors import EnvError
from rollout.sim.protocol import EnvInfo, Poses, StepOutput


class GymVectorEnv:
    """A Gymnasium vector env (Box observations and actions) behind the `VectorEnv` protocol."""

    fresh_arrays = True  # every array handed out is copied from Gymnasium's reused buffers

    def __init__(
        self,
        env: str | Any,
        *,
        num_envs: int = 1,
        seed: int = 0,
        reward_term_names: tuple[str, ...] | None = None,
        env_spacing: float | None = None,
        **make_kwargs: Any,
    ) -> None:
        """`env`: a Gymnasium id ("Ant-v5") or a `gymnasium.vector.VectorEnv`.
        `make_kwargs` go to `gymnasium.make_vec` (e.g. `max_episode_steps`)."""
        import gymnasium as gym
        from gymnasium.vector import AutoresetMode

        self._gym = gym
        if isinstance(env, str):
            env_id = env
            try:
                env = gym.make_vec(
                    env_id,
                    num_envs=num_envs,
                    vectorization_mode="sync",
                    vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
                    **make_kwargs,
                )
            except gym.error.Error as e:
                raise EnvError(f"cannot make Gymnasium env {env_id}: {e}") from None
            except (ImportError, ModuleNotFoundError) as e:
                raise EnvError(f"Gymnasium env {env_id} needs a package that is missing: {e}") from None
        else:
            inner = (getattr(env, "envs", None) or [None])[0]
            spec = getattr(env, "spec", None) or getattr(inner, "spec", None)
            env_id = getattr(spec, "id", None) or type(env).__name__
        self._env = env
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode not in (AutoresetMode.SAME_STEP, AutoresetMode.DISABLED):
            raise EnvError(
                f"Gymnasium env {env_id} resets with {mode}; build it with "
                "vector_kwargs={'autoreset_mode': AutoresetMode.SAME_STEP}"
            )
        self._manual_reset = mode == AutoresetMode.DISABLED
        obs_space, act_space = env.single_observation_space, env.single_action_space
        if not isinstance(obs_space, gym.spaces.Box) or not isinstance(act_space, gym.spaces.Box):
            raise EnvError(
                f"Gymnasium env {env_id} has {type(obs_space).__name__} observations and "
                f"{type(act_space).__name__} actions; rollout needs Box spaces for both"
            )
        self.num_envs = n = int(env.num_envs)
        self._obs_dim = int(np.prod(obs_space.shape))
        act_dim = int(np.prod(act_space.shape))
        self._act_shape = (n, *act_space.shape)
        low = np.asarray(act_space.low, np.float32).reshape(act_dim)
        high = np.asarray(act_space.high, np.float32).reshape(act_dim)

        self._mj = _MujocoView.of(env)
        names = reward_term_names
        if names is None:
            names = self._probe_term_names(seed, (low, high))
        self._terms = tuple(names)
        dt = self._mj.dt if self._mj else float(getattr(_first_unwrapped(env), "dt", 0.0) or 0.0)
        if not dt:
            fps = env.metadata.get("render_fps") or 0
            dt = 1.0 / fps if fps else 1.0
        self.info = EnvInfo(
            name=f"gym:{env_id}",
            num_envs=n,
            obs_dim=self._obs_dim,
            act_dim=act_dim,
            dt=dt,
            body_names=self._mj.layout.body_names if self._mj else (),
            joint_names=self._mj.layout.joint_names if self._mj else (),
            action_names=self._mj.layout.action_names if self._mj and len(self._mj.layout.action_names) == act_dim else (),
            reward_term_names=self._terms,
            model_format="mjcf" if self._mj and self._mj.model_text else "",
            model_text=self._mj.model_text if self._mj else "",
            env_spacing=(2.0 if self._mj else 0.0) if env_spacing is None else env_spacing,
            action_low=low if np.isfinite(low).any() else None,
            action_high=high if np.isfinite(high).any() else None,
        )
        self._closed = False

    def reset(self, seed: int) -> np.ndarray:
        """Reset every env, env i from `seed + i` (Gymnasium's own convention)."""
        obs, _ = self._env.reset(seed=int(seed))
        return self._flat_obs(obs)

    def step(self, action: np.ndarray) -> StepOutput:
        """Step every env; ended envs come back reset (see the module docstring)."""
        action = np.asarray(action, dtype=np.float32).reshape(self._act_shape)
        obs, reward, terminated, truncated, infos = self._env.step(action)
        terminated = np.array(terminated, dtype=bool)
        truncated = np.array(truncated, dtype=bool)
        done = terminated | truncated
        terms = np.zeros((len(self._terms), self.num_envs), np.float32)
        for k, name in enumerate(self._terms):
            _fill(terms[k], infos, name)
            final = infos.get("final_info")
            if isinstance(final, Mapping):
                _fill(terms[k], final, name)
        if self._manual_reset and done.any():
            obs, _ = self._env.reset(options={"reset_mask": done})
        return StepOutput(
            obs=self._flat_obs(obs),
            reward=np.array(reward, dtype=np.float32),
            terms=terms,
            terminated=terminated,
            truncated=truncated,
        )

    def poses(self) -> Poses:
        """Poses read from each env's MjData; an empty `Poses` for non-MuJoCo envs."""
        if self._mj is None:
            return Poses.empty(self.num_envs)
        return self._mj.poses()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._env.close()

    def _flat_obs(self, obs: np.ndarray) -> np.ndarray:
        return np.array(obs, dtype=np.float32).reshape(self.num_envs, self._obs_dim)

    def _probe_term_names(self, seed: int, bounds: tuple[np.ndarray, np.ndarray]) -> tuple[str, ...]:
        """Names of the reward terms, from the info of one step (the run's reset undoes it)."""
        self._env.reset(seed=int(seed))
        low, high = bounds
        action = np.clip(np.zeros(low.shape, np.float32), low, high)
        _, _, _, _, infos = self._env.step(np.broadcast_to(action, (self.num_envs, *action.shape)).reshape(self._act_shape))
        found = [k for k in infos if isinstance(k, str) and k.startswith("reward_")]
        final = infos.get("final_info")
        if isinstance(final, Mapping):
            found += [k for k in final if isinstance(k, str) and k.startswith("reward_") and k not in found]
        return tuple(found)


def _fill(out: np.ndarray, infos: Mapping[str, Any], name: str) -> None:
    """Copy info[name] into `out` where Gymnasium's `_name` mask says the env reported it."""
    if name not in infos:
        return
    values = np.asarray(infos[name], dtype=np.float32).reshape(-1)
    mask = np.asarray(infos.get("_" + name, np.ones(out.shape, bool)), dtype=bool).reshape(-1)
    out[mask] = values[mask]


def _first_unwrapped(env: Any) -> Any:
    envs = getattr(env, "envs", None)
    return envs[0].unwrapped if envs else None


class _MujocoView:
    """Reads poses out of the MjData of each MuJoCo env inside a SyncVectorEnv."""

    def __init__(self, envs: list[Any]) -> None:
        import mujoco

        from rollout.model import self_contained_mjcf
        from rollout.sim.mjlayout import MjLayout

        self._mujoco = mujoco
        self._envs = envs
        first = envs[0]
        self.model = first.model
        self.layout = MjLayout.of(self.model)
        self.dt = float(first.dt)
        path = getattr(first, "fullpath", None)
        self.model_text = self_contained_mjcf(path) if path and Path(path).is_file() else ""  # meshes inlined
        self._scratch = mujoco.MjData(self.model)
        n, m = len(envs), self.model
        self._qpos = np.zeros((n, m.nq))
        self._xpos = np.zeros((n, m.nbody, 3))
        self._xquat = np.zeros((n, m.nbody, 4))

    @classmethod
    def of(cls, vec: Any) -> _MujocoView | None:
        envs = getattr(vec, "envs", None)
        if not envs:
            return None
        unwrapped = [e.unwrapped for e in envs]
        if not all(hasattr(u, "model") and hasattr(u, "data") and hasattr(u, "dt") for u in unwrapped):
            return None
        try:
            import mujoco
        except ImportError:
            return None
        if not isinstance(unwrapped[0].model, mujoco.MjModel):
            return None
        return cls(unwrapped)

    def poses(self) -> Poses:
        mj, m, d = self._mujoco, self.model, self._scratch
        for i, env in enumerate(self._envs):  # one MjData per env: nothing to batch
            d.qpos[:] = env.data.qpos
            mj.mj_kinematics(m, d)  # on a scratch copy: the env's own derived fields feed its rewards
            self._qpos[i] = d.qpos
            self._xpos[i] = d.xpos
            self._xquat[i] = d.xquat
        return self.layout.poses(self._qpos, self._xpos, self._xquat)
