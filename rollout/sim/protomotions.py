"""ProtoMotions envs (NVlabs/ProtoMotions) as `VectorEnv`s (rollout.sim.protocol).

Thin adapters over an env object you already built with ProtoMotions (its build sequence is
`protomotions/inference_agent.py:main()`); hand one to rollout from a factory:
`env:=my_module:make_env` where `make_env(num_envs, seed)` builds the ProtoMotions env and
returns `ProtoMotionsV3Env(env)`.

NOT RUN HERE: these adapters are tested only against stand-ins that follow the interfaces
below (tests/test_sim_protomotions.py), not against ProtoMotions itself (which needs Isaac
Gym/Lab, Genesis or Newton and a GPU).

The interfaces relied on, as ProtoMotions documents them:

v3 (`protomotions/envs/base_env/env.py`)
  - `env.step(actions[N, A]) -> (obs: dict[str, Tensor[N, ...]], rew[N], reset[N], terminate[N], extras)`;
    no auto-reset: the caller resets the done ids with `env.reset(env_ids) -> (obs, info)`.
  - `extras["raw_r/<name>"]`: per-env unweighted value of each reward component
    (`extras["scaled_r/<name>"]` is the weighted one; choose with `terms="scaled"`).
  - `env.simulator.get_robot_state()`: `rigid_body_pos [N, B, 3]`, `rigid_body_rot [N, B, 4]`
    (x, y, z, w; body 0 is the root), `dof_pos [N, J]`.
  - names: `env.robot_config.kinematic_info.body_names / dof_names`; model file
    `env.robot_config.asset.asset_root / asset_file_name` (MJCF); reward components
    `env.config.reward_components` (name -> component with `function`).

v2 (ProtoMotions 2.x)
  - `env.step(actions) -> (obs, rew[N], reset[N], extras)` with `extras["terminate"]`;
    `env.reset(env_ids) -> obs`.
  - reward terms only as batch means: `extras["to_log"]["raw/<name>_mean"]`. The adapter
    repeats each mean for every env, so v2 per-env term values are the batch mean.
  - poses: `env.simulator.get_bodies_state()` (`rigid_body_pos`, `rigid_body_rot`, x, y, z, w)
    and `get_dof_state()` (`dof_pos`), or `get_robot_state()` where present; names from
    `env.config.robot.body_names / dof_names`.

Observations: ProtoMotions returns a dict of tensors; the adapter concatenates the entries
named in `obs_keys` (default: every [N, ...] tensor, in the dict's order), each flattened per
env. Seeding: `reset(seed)` calls `torch.manual_seed(seed)`; GPU simulators are not bitwise
deterministic, so seeded runs are repeatable only as far as the simulator is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rollout.errors import EnvError
from rollout.sim.protocol import EnvInfo, ModelFormat, Poses, StepOutput

_V2_TERM = re.compile(r"^raw/(.+)_mean$")


def _np(t: Any, dtype: Any = np.float32) -> np.ndarray:
    """A tensor (any device) or array as a new numpy array."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()
    return np.array(t, dtype=dtype)


def _get(obj: Any, path: str) -> Any:
    """obj.a.b.c, or None where a link is missing."""
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


class _ProtoMotionsEnv:
    """What v2 and v3 share: names, model, observation flattening, poses, episode resets."""

    fresh_arrays = True
    version = ""

    def __init__(
        self,
        env: Any,
        *,
        obs_keys: Sequence[str] | None = None,
        reward_term_names: Sequence[str] | None = None,
        model_path: str | Path | None = None,
        env_spacing: float = 0.0,
        name: str | None = None,
    ) -> None:
        import torch

        self._torch = torch
        self.env = env
        self.num_envs = n = int(env.num_envs)
        self.device = getattr(env, "device", "cpu")
        first = env.reset()
        obs = first[0] if isinstance(first, tuple) else first
        if not isinstance(obs, Mapping):
            raise EnvError(f"ProtoMotions env returned {type(obs).__name__} observations; expected a dict of tensors")
        if obs_keys is None:
            obs_keys = [k for k, v in obs.items() if hasattr(v, "shape") and len(v.shape) >= 1 and v.shape[0] == n]
        missing = [k for k in obs_keys if k not in obs]
        if missing:
            raise EnvError(f"ProtoMotions observations have no {missing[0]!r} (they have {', '.join(obs)})")
        self._obs_keys = tuple(obs_keys)
        obs_dim = int(self._flat_obs(obs).shape[1])
        bodies, joints = self._names()
        act_dim = self._act_dim()
        terms = tuple(reward_term_names) if reward_term_names is not None else self._term_names()
        if terms is None:
            terms = self._probe_term_names(act_dim)
        self._terms = tuple(terms)
        fmt, text = _read_model(Path(model_path) if model_path else self._model_path())
        self.info = EnvInfo(
            name=name or f"protomotions{self.version}:{type(env).__name__}",
            num_envs=n,
            obs_dim=obs_dim,
            act_dim=act_dim,
            dt=float(env.dt),
            body_names=bodies,
            joint_names=joints,
            reward_term_names=self._terms,
            model_format=fmt,
            model_text=text,
            env_spacing=env_spacing,
        )

    # -- protocol ---------------------------------------------------------------------

    def reset(self, seed: int) -> np.ndarray:
        """Reset every env after seeding torch with `seed`."""
        self._torch.manual_seed(int(seed))
        out = self.env.reset()
        return self._flat_obs(out[0] if isinstance(out, tuple) else out)

    def step(self, action: np.ndarray) -> StepOutput:
        """Step, then reset the envs that ended (ProtoMotions leaves that to the caller)."""
        act = self._torch.as_tensor(np.asarray(action, np.float32), device=self.device)
        obs, reward, done, terminated, terms = self._step(act)
        truncated = done & ~terminated
        ended = np.flatnonzero(done)
        if ended.size:
            ids = self._torch.as_tensor(ended, dtype=self._torch.long, device=self.device)
            out = self.env.reset(ids)
            obs = out[0] if isinstance(out, tuple) else out
        return StepOutput(
            obs=self._flat_obs(obs),
            reward=reward,
            terms=terms,
            terminated=terminated,
            truncated=truncated,
        )

    def poses(self) -> Poses:
        """Body poses from the simulator; body 0 is the root (the base)."""
        pos, rot, dof = self._robot_state()
        body_poses = np.concatenate([_np(pos), _np(rot)], axis=-1)
        return Poses(
            base_pos=body_poses[:, 0, :3].copy(),
            base_quat=body_poses[:, 0, 3:].copy(),
            joint_pos=_np(dof),
            body_poses=body_poses,
        )

    def close(self) -> None:
        close = getattr(self.env, "close", None)
        if callable(close):
            close()

    # -- shared helpers ---------------------------------------------------------------

    def _flat_obs(self, obs: Mapping[str, Any]) -> np.ndarray:
        parts = [_np(obs[k]).reshape(self.num_envs, -1) for k in self._obs_keys]
        return np.concatenate(parts, axis=1) if parts else np.zeros((self.num_envs, 0), np.float32)

    def _probe_term_names(self, act_dim: int) -> tuple[str, ...]:
        """Step once with zero actions to see which terms the env reports (reset undoes it)."""
        zeros = self._torch.zeros((self.num_envs, act_dim), device=self.device)
        *_, terms = self._step_raw(zeros)
        return tuple(terms)

    def _step(self, act: Any) -> tuple[Mapping[str, Any], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        obs, reward, done, terminated, found = self._step_raw(act)
        terms = np.zeros((len(self._terms), self.num_envs), np.float32)
        for k, name in enumerate(self._terms):
            if name in found:
                terms[k] = np.broadcast_to(_np(found[name]).reshape(-1), self.num_envs)
        return obs, _np(reward).reshape(-1), _np(done, bool).reshape(-1), _np(terminated, bool).reshape(-1), terms

    # -- version-specific -------------------------------------------------------------

    def _step_raw(self, act: Any) -> tuple[Mapping[str, Any], Any, Any, Any, dict[str, Any]]:
        raise NotImplementedError

    def _names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        raise NotImplementedError

    def _act_dim(self) -> int:
        raise NotImplementedError

    def _term_names(self) -> tuple[str, ...] | None:
        return None

    def _model_path(self) -> Path | None:
        raise NotImplementedError

    def _robot_state(self) -> tuple[Any, Any, Any]:
        raise NotImplementedError


class ProtoMotionsV3Env(_ProtoMotionsEnv):
    """A ProtoMotions v3 `BaseEnv` behind the `VectorEnv` protocol (see the module docstring)."""

    version = "3"

    def __init__(self, env: Any, *, terms: Literal["raw", "scaled"] = "raw", **kwargs: Any) -> None:
        """`terms`: report `raw_r/<name>` (unweighted, default) or `scaled_r/<name>` values.
        Other options: `obs_keys`, `reward_term_names`, `model_path`, `env_spacing`, `name`."""
        self._prefix = f"{terms}_r/"
        super().__init__(env, **kwargs)

    def _step_raw(self, act: Any) -> tuple[Mapping[str, Any], Any, Any, Any, dict[str, Any]]:
        obs, reward, reset, terminate, extras = self.env.step(act)
        p = self._prefix
        found = {k[len(p) :]: v for k, v in extras.items() if isinstance(k, str) and k.startswith(p)}
        # copy before the caller's reset can overwrite ProtoMotions' reused buffers
        return obs, _np(reward), _np(reset, bool), _np(terminate, bool), {k: _np(v) for k, v in found.items()}

    def _names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        kin = _get(self.env, "robot_config.kinematic_info")
        if kin is None:
            raise EnvError("ProtoMotions v3 env has no robot_config.kinematic_info (body and dof names)")
        return tuple(kin.body_names), tuple(kin.dof_names)

    def _act_dim(self) -> int:
        n = _get(self.env, "robot_config.number_of_actions")
        return int(n if n is not None else self.env.get_action_size())

    def _term_names(self) -> tuple[str, ...] | None:
        comps = _get(self.env, "config.reward_components")
        if not isinstance(comps, Mapping):
            return None
        return tuple(k for k, c in comps.items() if getattr(c, "function", None) is not None)

    def _model_path(self) -> Path | None:
        return _asset_path(_get(self.env, "robot_config.asset"))

    def _robot_state(self) -> tuple[Any, Any, Any]:
        rs = self.env.simulator.get_robot_state()
        return rs.rigid_body_pos, rs.rigid_body_rot, rs.dof_pos


class ProtoMotionsV2Env(_ProtoMotionsEnv):
    """A ProtoMotions v2 env behind the `VectorEnv` protocol; reward terms are batch means."""

    version = "2"

    def _step_raw(self, act: Any) -> tuple[Mapping[str, Any], Any, Any, Any, dict[str, Any]]:
        obs, reward, reset, extras = self.env.step(act)
        found = {}
        for key, value in (extras.get("to_log") or {}).items():
            m = _V2_TERM.match(key) if isinstance(key, str) else None
            if m:
                found[m.group(1)] = _np(value)
        terminate = extras.get("terminate")
        terminate = _np(terminate, bool) if terminate is not None else np.zeros(self.num_envs, bool)
        return obs, _np(reward), _np(reset, bool), terminate, found

    def _names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        robot = _get(self.env, "config.robot")
        if robot is None:
            raise EnvError("ProtoMotions v2 env has no config.robot (body and dof names)")
        return tuple(robot.body_names), tuple(robot.dof_names)

    def _act_dim(self) -> int:
        return int(_get(self.env, "config.robot.number_of_actions"))

    def _model_path(self) -> Path | None:
        return _asset_path(_get(self.env, "config.robot.asset"))

    def _robot_state(self) -> tuple[Any, Any, Any]:
        sim = self.env.simulator
        if hasattr(sim, "get_robot_state"):
            rs = sim.get_robot_state()
            return rs.rigid_body_pos, rs.rigid_body_rot, rs.dof_pos
        bodies, dofs = sim.get_bodies_state(), sim.get_dof_state()
        return bodies.rigid_body_pos, bodies.rigid_body_rot, dofs.dof_pos


def _asset_path(asset: Any) -> Path | None:
    if asset is None or not getattr(asset, "asset_file_name", None):
        return None
    root = str(getattr(asset, "asset_root", "") or "")
    try:  # v3 stores a checkout-relative root and resolves it when read
        from protomotions.assets import resolve_asset_root  # type: ignore[import-not-found]

        root = resolve_asset_root(root)
    except ImportError:
        pass
    return Path(root) / asset.asset_file_name


def _read_model(path: Path | None) -> tuple[ModelFormat, str]:
    if path is None or not path.is_file():
        return "", ""
    fmt: ModelFormat = "urdf" if path.suffix.lower() == ".urdf" else "mjcf"
    return fmt, path.read_text()
