"""The stepping loop: NPZ alignment, episode events, switching the policy off, records that stay put."""

from __future__ import annotations

import numpy as np
import pytest

from rollout.errors import PolicyError
from rollout.policy import make_policy
from rollout.sim import EnvInfo, Poses, StepOutput, make_env, run_steps


class CounterEnv:
    """Tiny env with known answers: obs = [t_in_episode, env id]; reward = sum(action);
    env i ends its episode every 3 + i steps (terminated when i is even, else truncated).
    Reuses its output buffers, as many real envs do, and does not claim fresh_arrays."""

    def __init__(self, num_envs: int = 3) -> None:
        self.n = num_envs
        self.info = EnvInfo(name="counter", num_envs=num_envs, obs_dim=2, act_dim=2, dt=0.5, reward_term_names=("a0", "a1"))
        self._t = np.zeros(num_envs, np.int64)
        self._obs = np.zeros((num_envs, 2), np.float32)
        self._reward = np.zeros(num_envs, np.float32)

    def _fill(self) -> np.ndarray:
        self._obs[:, 0] = self._t
        self._obs[:, 1] = np.arange(self.n)
        return self._obs

    def reset(self, seed: int) -> np.ndarray:
        self._t[:] = 0
        return self._fill()

    def step(self, action: np.ndarray) -> StepOutput:
        self._t += 1
        done = self._t >= 3 + np.arange(self.n)
        even = np.arange(self.n) % 2 == 0
        self._reward[:] = action.sum(axis=1)
        self._t[done] = 0
        return StepOutput(obs=self._fill(), reward=self._reward, terms=action.T.copy(), terminated=done & even, truncated=done & ~even)

    def poses(self) -> Poses:
        p = Poses.empty(self.n)
        p.base_pos[:, 0] = self._t
        return p

    def close(self) -> None:
        pass


def ones_policy(obs: np.ndarray) -> np.ndarray:
    return np.ones((obs.shape[0], 2), np.float32)


def test_record_t_holds_obs_action_reward_and_done_of_one_transition() -> None:
    recs = list(run_steps(CounterEnv(), ones_policy, steps=8))
    assert [r.step for r in recs] == list(range(8))
    assert [r.sim_time for r in recs] == [0.5 * t for t in range(8)]
    # env 0: episode steps 0,1,2 then done at record 2; obs_t is the state the action was taken in
    assert [r.obs[0, 0] for r in recs] == [0, 1, 2, 0, 1, 2, 0, 1]
    assert [bool(r.done[0]) for r in recs] == [False, False, True, False, False, True, False, False]
    assert [r.poses.base_pos[0, 0] for r in recs] == [0, 1, 2, 0, 1, 2, 0, 1]
    for r in recs:
        np.testing.assert_array_equal(r.action, np.ones((3, 2)))
        np.testing.assert_array_equal(r.reward, np.full(3, 2.0))
        np.testing.assert_array_equal(r.terms, np.ones((2, 3)))


def test_episode_ends_are_reported_with_return_length_and_kind() -> None:
    recs = list(run_steps(CounterEnv(), ones_policy, steps=12))
    events = [(r.step, int(e), float(ret), int(n), bool(term)) for r in recs for e, ret, n, term in zip(
        r.episodes.env_ids, r.episodes.returns, r.episodes.lengths, r.episodes.terminated)]
    assert (2, 0, 6.0, 3, True) in events      # env 0: 3 steps of reward 2, terminated
    assert (3, 1, 8.0, 4, False) in events     # env 1: 4 steps, truncated
    assert (4, 2, 10.0, 5, True) in events     # env 2: 5 steps, terminated
    assert (5, 0, 6.0, 3, True) in events      # returns restart after a reset
    assert sum(len(r.episodes) for r in recs) == 4 + 3 + 2


def test_humanoid_resets_show_up_as_events_with_the_episode_return() -> None:
    env = make_env("humanoid", num_envs=4, seed=0)
    policy = make_policy("random", act_dim=17, seed=0, action_low=env.info.action_low, action_high=env.info.action_high)
    running = np.zeros(4)
    length = np.zeros(4, int)
    ended = 0
    for rec in run_steps(env, policy, seed=0, steps=120):
        running += rec.reward
        length += 1
        for i, ret, n, term in zip(rec.episodes.env_ids, rec.episodes.returns, rec.episodes.lengths, rec.episodes.terminated):
            assert ret == pytest.approx(running[i], rel=1e-5) and n == length[i]
            assert term == rec.terminated[i] and rec.done[i]
            running[i], length[i] = 0.0, 0
            ended += 1
        assert set(np.flatnonzero(rec.done)) == set(rec.episodes.env_ids.tolist())
    assert ended >= 4  # random actions topple the humanoid within ~30 steps


def test_switching_the_policy_off_sends_zero_actions_without_calling_it() -> None:
    calls = []

    def policy(obs: np.ndarray) -> np.ndarray:
        calls.append(obs.shape)
        return np.full((obs.shape[0], 2), 0.5, np.float32)

    switch = iter([True, False, False, True])
    recs = list(run_steps(CounterEnv(), policy, steps=4, policy_enabled=lambda: next(switch)))
    assert [r.policy_enabled for r in recs] == [True, False, False, True]
    assert len(calls) == 2
    assert not recs[1].action.any() and not recs[2].action.any() and (recs[3].action == 0.5).all()
    np.testing.assert_array_equal(recs[1].reward, np.zeros(3))


def test_records_stay_as_they_were_when_the_env_reuses_buffers() -> None:
    recs = list(run_steps(CounterEnv(), ones_policy, steps=4))
    assert [r.obs[1, 0] for r in recs] == [0, 1, 2, 3]
    assert len({id(r.obs) for r in recs}) == 4
    assert [bool(r.done[0]) for r in recs] == [False, False, True, False]


def test_same_seed_same_records() -> None:
    def run() -> list[np.ndarray]:
        env = make_env("humanoid", num_envs=2, seed=7)
        policy = make_policy("random", act_dim=17, seed=1)
        return [np.concatenate([r.obs.ravel(), r.action.ravel(), r.reward]) for r in run_steps(env, policy, seed=7, steps=25)]

    np.testing.assert_array_equal(np.stack(run()), np.stack(run()))


def test_policy_returning_the_wrong_shape_is_one_line() -> None:
    with pytest.raises(PolicyError) as e:
        next(run_steps(CounterEnv(), lambda obs: np.zeros((3, 5), np.float32), steps=1))
    assert "\n" not in str(e.value) and "(3, 2)" in str(e.value)
