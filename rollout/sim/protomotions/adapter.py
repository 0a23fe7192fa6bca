"""ProtoMotions envs behind the `VectorEnv` protocol: `ProtoMotionsV3Env(env)`, `ProtoMotionsV2Env(env)`.

The interfaces relied on (read from ProtoMotions' source, v2.3 to main of 2026):

v3 (`protomotions/envs/base_env/env.py`, 3.0, 3.1 and main)
  - `env.step(actions[N, A]) -> (obs: dict[str, Tensor[N, ...]], rew[N], reset[N], terminate[N], extras)`;
    no auto-reset: the caller resets the done ids with `env.reset(env_ids) -> (obs, info)`.
  - `extras["raw_r/<name>"]`: per-env unweighted value of every reward component;
    `extras["scaled_r/<name>"]`: weight x value (clamped) for additive components with a
    non-zero weight; when some components are multiplicative, `extras["multiplicative_reward"]`
    is their product and the reward is sum(scaled) + that product.
  - `extras["termination/<name>"]`: per-env flag of each termination component (main, 3.1).
  - `extras["raw/rigid_body_pos" | "raw/rigid_body_rot" | "raw/dof_pos"]`: the robot state
    reached by this step, [N, B*3], [N, B*4] (x, y, z, w), [N, J], taken *before* the caller
    resets the envs that ended: the terminal pose of an ended episode.
  - `env.simulator.get_robot_state()`: `rigid_body_pos [N, B, 3]`, `rigid_body_rot [N, B, 4]`
    (x, y, z, w; body 0 is the root), `dof_pos [N, J]`.
  - names: `env.robot_config.kinematic_info.body_names / dof_names`; model file
    `env.robot_config.asset.asset_root / asset_file_name` (MJCF).
  - reward components: main `env.config.reward_components`, a dict of `MdpComponent` (callable
    `compute_func`, parameters from `get_params()`: `weight`, `multiplicative`); 3.1 the same
    dict with `function`, `weight`, `multiplicative` attributes; 3.0 `env.config.reward_config`.
    Termination components: `env.config.termination_components` (main, 3.1). Where none of
    these exist, one probing step with zero actions reads the names from the extras.

v2 (ProtoMotions 2.x)
  - `env.step(actions) -> (obs, rew[N], reset[N], extras)` with `extras["terminate"]`;
    `env.reset(env_ids) -> obs`.
  - reward terms only as batch means: `extras["to_log"]["raw/<name>_mean"]`. The adapter
    repeats each mean for every env, so v2 per-env term values are the batch mean.
  - poses: `env.simulator.get_bodies_state()` (`rigid_body_pos`, `rigid_body_rot`, x, y, z, w)
    and `get_dof_state()` (`dof_pos`), or `get_robot_state()` where present; names from
    `env.config.robot.body_names / dof_names`.

Recorded reward terms (v3), `terms=`:
  - "both" (default): every component's raw value under its own name (`gt_rew`), then the
    weighted value under `scaled/<name>` for each component that has one, then
    `multiplicative_reward` when some components multiply. Then the recorded reward total is
    exactly the sum of the `scaled/` terms plus `multiplicative_reward`; a multiplicative
    component has no weighted value of its own (it only enters through the product).
  - "raw": the raw values only; "scaled": the `scaled_r/` values under the bare names.
Episode ends: the termination components that fired, by name (EpisodeEvents.reasons); an end
no component claims is "truncated" (ProtoMotions' episode-length limit or a task's reset) or
"terminated". The terminal pose is recorded with the event.

Observations: ProtoMotions returns a dict of tensors; the adapter concatenates the entries
named in `obs_keys` (default: every [N, ...] tensor, in the dict's order), each flattened per
env; `obs_layout` says how to split them again. Seeding: `reset(seed)` calls
`torch.manual_seed(seed)`; simulators are not bitwise deterministic, so seeded runs are
repeatable only as far as the simulator is.

Where the envs are: ProtoMotions spawns envs at terrain positions of its own, so by default
(`env_spacing=None`) poses are drawn as they are; only envs that start on top of each other
(all within 0.5 m, as in a flat MuJoCo scene) are spread on a 2 m grid for drawing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rollout.errors import EnvError
from rollout.model import ModelError
from rollout.sim.protocol import EnvInfo, ModelFormat, Poses, StepOutput

log = logging.getLogger(__name__)

_V2_TERM = re.compile(r"^raw/(.+)_mean$")
_OVERLAP_M = 0.5  # envs closer than this at reset are drawn on a grid
_AUTO_SPACING_M = 2.0


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


def _params(component: Any) -> Mapping[str, Any]:
    """A reward component's settings, whichever ProtoMotions version made it."""
    get = getattr(component, "get_params", None)
    if callable(get):
        return get() or {}
    static = getattr(component, "static_params", None)
    if isinstance(static, Mapping):
        return static
    return {k: getattr(component, k) for k in ("weight", "multiplicative") if hasattr(component, k)}


def _is_active(component: Any) -> bool:
    return getattr(component, "compute_func", None) is not None or getattr(component, "function", None) is not None


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
        env_spacing: float | None = None,
        name: str | None = None,
    ) -> None:
        import torch

        self._torch = torch
        self.env = env
        self.num_envs = n = int(env.num_envs)
        self.device = getattr(env, "device", "cpu")
        obs = self._reset_all()
        if obs_keys is None:
            obs_keys = [k for k, v in obs.items() if hasattr(v, "shape") and len(v.shape) >= 1 and v.shape[0] == n]
        missing = [k for k in obs_keys if k not in obs]
        if missing:
            raise EnvError(f"ProtoMotions observations have no {missing[0]!r} (they have {', '.join(obs)})")
        self.obs_layout: tuple[tuple[str, tuple[int, ...]], ...] = tuple((k, tuple(obs[k].shape[1:])) for k in obs_keys)
        """(key, per-env shape) of each observation entry, in the order they are concatenated."""
        self.obs_dtypes = {k: getattr(obs[k], "dtype", None) for k in obs_keys}
        """Each entry's tensor dtype (the flat observations are float32)."""
        obs_dim = int(self._flat_obs(obs).shape[1])
        bodies, joints = self._names()
        act_dim = self._act_dim()
        terms, reasons = self._declared_terms(), self._declared_reasons()
        if terms is None or reasons is None:
            probe = self._probe(act_dim)
            terms = terms if terms is not None else self._terms_from_extras(probe)
            reasons = reasons if reasons is not None else self._reasons_from_extras(probe)
        if reward_term_names is not None:  # the caller's names, values from the raw terms
            terms = tuple((str(t), self._raw_key(str(t))) for t in reward_term_names)
        self._terms: tuple[tuple[str, str], ...] = tuple(terms)
        self._reasons: tuple[str, ...] = tuple(reasons)
        fmt, text = _read_model(Path(model_path) if model_path else self._model_path())
        if env_spacing is None:
            env_spacing = _auto_spacing(self.poses().base_pos)
        self.info = EnvInfo(
            name=name or f"protomotions{self.version}:{type(env).__name__}",
            num_envs=n,
            obs_dim=obs_dim,
            act_dim=act_dim,
            dt=float(env.dt),
            body_names=bodies,
            joint_names=joints,
            reward_term_names=tuple(t for t, _ in self._terms),
            termination_names=self._reasons,
            model_format=fmt,
            model_text=text,
            env_spacing=env_spacing,
        )

    # -- protocol ---------------------------------------------------------------------

    def reset(self, seed: int) -> np.ndarray:
        """Reset every env after seeding torch with `seed`."""
        self._torch.manual_seed(int(seed))
        return self._flat_obs(self._reset_all())

    def step(self, action: np.ndarray) -> StepOutput:
        """Step, then reset the envs that ended (ProtoMotions leaves that to the caller)."""
        act = self._torch.as_tensor(np.asarray(action, np.float32), device=self.device)
        obs, reward, done, terminated, extras = self._step_raw(act)
        truncated = done & ~terminated
        ended = np.flatnonzero(done)
        final = None
        if ended.size:
            final = self._final_poses(extras)  # before the reset below overwrites the state
            ids = self._torch.as_tensor(ended, dtype=self._torch.long, device=self.device)
            out = self.env.reset(ids)
            obs = out[0] if isinstance(out, tuple) else out
        return StepOutput(
            obs=self._flat_obs(obs),
            reward=reward,
            terms=self._term_values(extras),
            terminated=terminated,
            truncated=truncated,
            end_reasons=self._reason_flags(extras) if ended.size and self._reasons else None,
            final_poses=final,
        )

    def poses(self) -> Poses:
        """Body poses from the simulator; body 0 is the root (the base)."""
        pos, rot, dof = self._robot_state()
        return _poses(_np(pos), _np(rot), _np(dof))

    def close(self) -> None:
        close = getattr(self.env, "close", None) or getattr(getattr(self.env, "simulator", None), "shutdown", None)
        if callable(close):
            close()
            self.env = _Closed()

    def unflatten_obs(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """Flat obs [N, O] back into ProtoMotions' dict (views, shapes from `obs_layout`)."""
        out, start = {}, 0
        for key, shape in self.obs_layout:
            size = int(np.prod(shape, dtype=np.int64))
            out[key] = obs[:, start : start + size].reshape(obs.shape[0], *shape)
            start += size
        return out

    # -- shared helpers ---------------------------------------------------------------

    def _reset_all(self) -> Mapping[str, Any]:
        out = self.env.reset()
        obs = out[0] if isinstance(out, tuple) else out
        if not isinstance(obs, Mapping):
            raise EnvError(f"ProtoMotions env returned {type(obs).__name__} observations; expected a dict of tensors")
        return obs

    def _flat_obs(self, obs: Mapping[str, Any]) -> np.ndarray:
        parts = [_np(obs[k]).reshape(self.num_envs, -1) for k, _ in self.obs_layout]
        return np.concatenate(parts, axis=1) if parts else np.zeros((self.num_envs, 0), np.float32)

    def _probe(self, act_dim: int) -> dict[str, np.ndarray]:
        """Step once with zero actions to see which terms the env reports; a reset undoes it."""
        zeros = self._torch.zeros((self.num_envs, act_dim), device=self.device)
        *_, extras = self._step_raw(zeros)
        self._reset_all()
        return extras

    def _term_values(self, extras: Mapping[str, np.ndarray]) -> np.ndarray:
        terms = np.zeros((len(self._terms), self.num_envs), np.float32)
        for k, (_, key) in enumerate(self._terms):
            if key in extras:
                terms[k] = np.broadcast_to(extras[key].reshape(-1), self.num_envs)
        return terms

    def _reason_flags(self, extras: Mapping[str, np.ndarray]) -> np.ndarray:
        flags = np.zeros((len(self._reasons), self.num_envs), bool)
        for k, name in enumerate(self._reasons):
            value = extras.get(f"termination/{name}")
            if value is not None:
                flags[k] = value.reshape(-1) > 0.5
        return flags

    def _final_poses(self, extras: Mapping[str, np.ndarray]) -> Poses:
        pos, rot, dof = (extras.get(f"raw/{k}") for k in ("rigid_body_pos", "rigid_body_rot", "dof_pos"))
        if pos is None or rot is None or dof is None:
            return self.poses()
        n = self.num_envs
        return _poses(pos.reshape(n, -1, 3), rot.reshape(n, -1, 4), dof.reshape(n, -1))

    # -- version-specific -------------------------------------------------------------

    def _step_raw(self, act: Any) -> tuple[Mapping[str, Any], np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Step; reward, done, terminated and the extras read (copied) before any reset."""
        raise NotImplementedError

    def _declared_terms(self) -> tuple[tuple[str, str], ...] | None:
        return None

    def _declared_reasons(self) -> tuple[str, ...] | None:
        return ()

    def _terms_from_extras(self, extras: Mapping[str, np.ndarray]) -> tuple[tuple[str, str], ...]:
        return tuple((k, k) for k in extras)

    def _reasons_from_extras(self, extras: Mapping[str, np.ndarray]) -> tuple[str, ...]:
        return ()

    def _raw_key(self, name: str) -> str:
        return name

    def _names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        raise NotImplementedError

    def _act_dim(self) -> int:
        raise NotImplementedError

    def _model_path(self) -> Path | None:
        raise NotImplementedError

    def _robot_state(self) -> tuple[Any, Any, Any]:
        raise NotImplementedError


class ProtoMotionsV3Env(_ProtoMotionsEnv):
    """A ProtoMotions v3 `BaseEnv` (3.0, 3.1, main) behind the `VectorEnv` protocol (module docstring)."""

    version = "3"

    def __init__(self, env: Any, *, terms: Literal["both", "raw", "scaled"] = "both", **kwargs: Any) -> None:
        """`terms`: which reward terms to record (module docstring). Other options: `obs_keys`,
        `reward_term_names`, `model_path`, `env_spacing` (None: automatic), `name`."""
        if terms not in ("both", "raw", "scaled"):
            raise EnvError(f"terms must be 'both', 'raw' or 'scaled', got {terms!r}")
        self._mode = terms
        super().__init__(env, **kwargs)

    def _step_raw(self, act: Any) -> tuple[Mapping[str, Any], np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        obs, reward, reset, terminate, extras = self.env.step(act)
        # copy before the caller's reset can overwrite ProtoMotions' reused buffers
        kept = {k: _np(v) for k, v in extras.items() if isinstance(k, str) and _kept(k) and hasattr(v, "shape")}
        return obs, _np(reward).reshape(-1), _np(reset, bool).reshape(-1), _np(terminate, bool).reshape(-1), kept

    def _declared_terms(self) -> tuple[tuple[str, str], ...] | None:
        comps = _get(self.env, "config.reward_components")
        if not isinstance(comps, Mapping):
            comps = _get(self.env, "config.reward_config")  # 3.0
        if not isinstance(comps, Mapping):
            return None
        active = {k: _params(c) for k, c in comps.items() if _is_active(c)}
        scaled = [k for k, p in active.items() if not p.get("multiplicative", False) and p.get("weight", 0.0) != 0]
        product = any(p.get("multiplicative", False) for p in active.values())
        return self._layout(list(active), scaled, product)

    def _terms_from_extras(self, extras: Mapping[str, np.ndarray]) -> tuple[tuple[str, str], ...]:
        raw = [k[len("raw_r/") :] for k in extras if k.startswith("raw_r/")]
        scaled = [k[len("scaled_r/") :] for k in extras if k.startswith("scaled_r/")]
        return self._layout(raw, scaled, "multiplicative_reward" in extras)

    def _layout(self, raw: list[str], scaled: list[str], product: bool) -> tuple[tuple[str, str], ...]:
        if self._mode == "raw":
            return tuple((k, f"raw_r/{k}") for k in raw)
        if self._mode == "scaled":
            return tuple((k, f"scaled_r/{k}") for k in scaled)
        out = [(k, f"raw_r/{k}") for k in raw] + [(f"scaled/{k}", f"scaled_r/{k}") for k in scaled]
        if product:
            out.append(("multiplicative_reward", "multiplicative_reward"))
        return tuple(out)

    def _declared_reasons(self) -> tuple[str, ...] | None:
        comps = _get(self.env, "config.termination_components")
        if isinstance(comps, Mapping):
            return tuple(k for k, c in comps.items() if c is not None)
        return None

    def _reasons_from_extras(self, extras: Mapping[str, np.ndarray]) -> tuple[str, ...]:
        return tuple(k[len("termination/") :] for k in extras if k.startswith("termination/"))

    def _raw_key(self, name: str) -> str:
        return f"{'scaled' if self._mode == 'scaled' else 'raw'}_r/{name}"

    def _names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        kin = _get(self.env, "robot_config.kinematic_info")
        if kin is None:
            raise EnvError("ProtoMotions v3 env has no robot_config.kinematic_info (body and dof names)")
        return tuple(kin.body_names), tuple(kin.dof_names)

    def _act_dim(self) -> int:
        n = _get(self.env, "robot_config.number_of_actions")
        return int(n if n is not None else self.env.get_action_size())

    def _model_path(self) -> Path | None:
        return _asset_path(_get(self.env, "robot_config.asset"))

    def _robot_state(self) -> tuple[Any, Any, Any]:
        rs = self.env.simulator.get_robot_state()
        return rs.rigid_body_pos, rs.rigid_body_rot, rs.dof_pos


def _kept(key: str) -> bool:
    return key.startswith(("raw_r/", "scaled_r/", "termination/", "raw/rigid_body_pos", "raw/rigid_body_rot", "raw/dof_pos")) or key == "multiplicative_reward"


class ProtoMotionsV2Env(_ProtoMotionsEnv):
    """A ProtoMotions v2 env behind the `VectorEnv` protocol; reward terms are batch means."""

    version = "2"

    def _step_raw(self, act: Any) -> tuple[Mapping[str, Any], np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        obs, reward, reset, extras = self.env.step(act)
        found = {}
        for key, value in (extras.get("to_log") or {}).items():
            m = _V2_TERM.match(key) if isinstance(key, str) else None
            if m:
                found[m.group(1)] = _np(value)
        terminate = extras.get("terminate")
        terminate = _np(terminate, bool).reshape(-1) if terminate is not None else np.zeros(self.num_envs, bool)
        return obs, _np(reward).reshape(-1), _np(reset, bool).reshape(-1), terminate, found

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


class _Closed:
    """Stands in for a closed env so that a second close() does nothing."""

    def close(self) -> None:
        pass


def _poses(pos: np.ndarray, rot: np.ndarray, dof: np.ndarray) -> Poses:
    body_poses = np.concatenate([pos, rot], axis=-1).astype(np.float32, copy=False)
    return Poses(
        base_pos=body_poses[:, 0, :3].copy(),
        base_quat=body_poses[:, 0, 3:].copy(),
        joint_pos=np.asarray(dof, np.float32),
        body_poses=body_poses,
    )


def _auto_spacing(base_pos: np.ndarray) -> float:
    """0 (draw as they are) unless every env starts within `_OVERLAP_M` of env 0."""
    if len(base_pos) < 2:
        return 0.0
    spread = np.linalg.norm(base_pos[:, :2] - base_pos[:1, :2], axis=1).max()
    return _AUTO_SPACING_M if spread < _OVERLAP_M else 0.0


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
    """The robot model, meshes inlined so that the recording draws without the mesh files."""
    if path is None or not path.is_file():
        return "", ""
    if path.suffix.lower() == ".urdf":
        return "urdf", path.read_text()
    from rollout.model import self_contained_mjcf

    try:
        return "mjcf", self_contained_mjcf(path)
    except ModelError as e:  # record without meshes rather than not at all
        log.warning("the robot model %s is recorded as it is, meshes not embedded: %s", path, e)
        return "mjcf", path.read_text()
