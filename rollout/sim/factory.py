"""`make_env(spec, num_envs=..., seed=...)`: one string picks the env.

| spec | env |
|---|---|
| `humanoid`, `mujoco:Humanoid-v5` (default) | the embedded MuJoCo humanoid (rollout.sim.humanoid) |
| `mujoco:<id>`, `gym:<id>` | a Gymnasium env through the adapter (rollout.sim.adapters), e.g. `gym:Ant-v5` |
| `synthetic` | cheap made-up data for benchmarks (rollout.sim.synthetic); `obs_dim=` etc. as kwargs |
| `protomotions:<last.ckpt>` | a ProtoMotions checkpoint's env, its agent as `env.policy`; needs `trust=True` (rollout.sim.protomotions) |
| `synthetic:humanoid` | the same, drawn as Humanoid's 13 bodies (viewer and video at scale) |
| `package.module:factory` | your env: `factory(num_envs=..., seed=..., **kwargs)` returns a `VectorEnv` |
"""

from __future__ import annotations

from typing import Any

from rollout.errors import EnvError
from rollout.imports import load_callable
from rollout.limits import check_allocation
from rollout.sim.protocol import EnvInfo, VectorEnv

DEFAULT_ENV = "mujoco:Humanoid-v5"
MIN_BYTES_PER_ENV = 1024
_HUMANOID = ("humanoid", "mujoco:Humanoid-v5", "Humanoid-v5")


def is_humanoid(spec: str) -> bool:
    """Whether `spec` names the embedded humanoid (what the shipped `demo` policy walks)."""
    return (spec or DEFAULT_ENV).strip() in _HUMANOID


def _humanoid_model() -> dict:
    import mujoco

    from rollout.sim.humanoid import gymnasium_asset

    text = gymnasium_asset("humanoid.xml").read_text()
    m = mujoco.MjModel.from_xml_string(text)
    names = tuple(m.body(i).name for i in range(1, m.nbody))
    return {"model_text": text, "model_format": "mjcf", "body_names": names, "num_bodies": len(names)}


def make_env(spec: str = DEFAULT_ENV, *, num_envs: int = 1, seed: int = 0, **kwargs: Any) -> VectorEnv:
    """Build the env `spec` names with `num_envs` parallel envs; env i is seeded `seed + i`.

    Extra keyword arguments go to the env's constructor or factory. A spec that names no env
    raises EnvError with one line saying why.
    """
    spec = (spec or DEFAULT_ENV).strip()
    if num_envs < 1:
        raise EnvError(f"num_envs must be at least 1, got {num_envs}")
    # every env costs at least its share of each step's messages and of the loop's arrays
    check_allocation(num_envs * MIN_BYTES_PER_ENV, f"num_envs {num_envs} (at least {MIN_BYTES_PER_ENV} B per env)", EnvError)
    if spec in _HUMANOID:
        from rollout.sim.humanoid import HumanoidEnv

        return HumanoidEnv(num_envs, seed=seed, **kwargs)
    if spec in ("synthetic", "synthetic:humanoid"):
        from rollout.sim.synthetic import SyntheticEnv

        if spec == "synthetic:humanoid":  # made-up data drawn as Humanoid's bodies: scale runs with a video
            kwargs = dict(_humanoid_model(), **kwargs)
        return SyntheticEnv(num_envs, seed=seed, **kwargs)
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == "protomotions":
        from rollout.sim.protomotions.checkpoint import load_checkpoint

        return load_checkpoint(rest, num_envs=num_envs, seed=seed, **kwargs)
    if sep and prefix in ("gym", "mujoco"):
        if not rest:
            raise EnvError(f"env spec {spec!r} names no Gymnasium id (e.g. gym:Ant-v5)")
        from rollout.sim.adapters import GymVectorEnv

        return GymVectorEnv(rest, num_envs=num_envs, seed=seed, **kwargs)
    if sep and prefix and rest:
        return _from_factory(prefix, rest, num_envs=num_envs, seed=seed, **kwargs)
    raise EnvError(
        f"unknown env {spec!r}: use humanoid, gym:<Gymnasium id>, synthetic, protomotions:<checkpoint>, "
        "or package.module:factory"
    )


def _from_factory(module_name: str, attr: str, *, num_envs: int, seed: int, **kwargs: Any) -> VectorEnv:
    factory = load_callable(module_name, attr, what="env", error=EnvError)
    env = factory(num_envs=num_envs, seed=seed, **kwargs)
    check_env(env, where=f"{module_name}:{attr}")
    return env


def check_env(env: object, *, where: str = "env") -> None:
    """Raise EnvError (one line) unless `env` has the members of the `VectorEnv` protocol."""
    missing = [m for m in ("info", "reset", "step", "poses", "close") if not hasattr(env, m)]
    if missing:
        raise EnvError(
            f"{where} returned {type(env).__name__}, which lacks {', '.join(missing)} "
            "of the vector-env protocol (see rollout/sim/protocol.py)"
        )
    if not isinstance(env.info, EnvInfo):  # type: ignore[attr-defined]
        raise EnvError(f"{where} returned an env whose info is {type(env.info).__name__}, not rollout.sim.EnvInfo")  # type: ignore[attr-defined]
