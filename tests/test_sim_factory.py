"""`make_env` specs: built-ins, Gymnasium ids, your own factory, and one-line errors for the rest."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from rollout.errors import EnvError
from rollout.sim import VectorEnv, make_env, run_steps
from rollout.sim.synthetic import SyntheticEnv


def one_line(e: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(e.value)
    assert text and "\n" not in text, text
    return text


@pytest.mark.parametrize("spec", ["humanoid", "mujoco:Humanoid-v5", ""])
def test_default_env_is_the_embedded_humanoid(spec: str) -> None:
    env = make_env(spec, num_envs=2, seed=0)
    assert isinstance(env, VectorEnv)
    assert env.info.name == "mujoco:Humanoid-v5" and env.info.num_envs == 2


def test_gym_and_other_mujoco_ids_go_through_the_adapter() -> None:
    assert make_env("gym:Ant-v5", num_envs=2, seed=0).info.name == "gym:Ant-v5"
    assert make_env("mujoco:Hopper-v5", num_envs=1, seed=0).info.name == "gym:Hopper-v5"


def test_synthetic_env_has_the_sizes_asked_for_and_repeats_for_a_seed() -> None:
    env = make_env("synthetic", num_envs=64, seed=3, obs_dim=376, episode_length=10)
    assert (env.info.num_envs, env.info.obs_dim) == (64, 376)
    recs = list(run_steps(env, lambda obs: np.zeros((64, 17), np.float32), seed=3, steps=12))
    assert recs[0].obs.shape == (64, 376) and recs[0].poses.body_poses.shape == (64, 13, 7)
    assert sum(len(r.episodes) for r in recs) >= 64  # every env ends once in 10 steps
    again = list(run_steps(SyntheticEnv(64, seed=3, obs_dim=376, episode_length=10), lambda o: np.zeros((64, 17), np.float32), seed=3, steps=12))
    np.testing.assert_array_equal(recs[11].obs, again[11].obs)


def test_your_own_factory_by_module_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_envs.py").write_text(
        textwrap.dedent(
            """
            from rollout.sim.synthetic import SyntheticEnv

            def make(num_envs, seed, obs_dim=8):
                return SyntheticEnv(num_envs, seed=seed, obs_dim=obs_dim)

            def not_an_env(num_envs, seed):
                return object()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    env = make_env("my_envs:make", num_envs=3, seed=0, obs_dim=5)
    assert (env.info.num_envs, env.info.obs_dim) == (3, 5)
    with pytest.raises(EnvError) as e:
        make_env("my_envs:not_an_env", num_envs=1, seed=0)
    assert "vector-env protocol" in one_line(e)
    with pytest.raises(EnvError) as e:
        make_env("my_envs:absent", num_envs=1, seed=0)
    assert "absent" in one_line(e)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("no_such_package_abc:make", "cannot import env module no_such_package_abc"),
        ("walker", "unknown env 'walker'"),
        ("gym:", "names no Gymnasium id"),
        ("gym:NoSuchEnv-v0", "NoSuchEnv-v0"),
    ],
)
def test_bad_specs_fail_before_stepping_in_one_line(spec: str, words: str) -> None:
    with pytest.raises(EnvError) as e:
        make_env(spec, num_envs=1, seed=0)
    assert words in one_line(e)


def test_num_envs_must_be_positive() -> None:
    with pytest.raises(EnvError) as e:
        make_env("humanoid", num_envs=0, seed=0)
    one_line(e)
