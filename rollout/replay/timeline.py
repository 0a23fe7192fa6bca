"""The whole-run series a viewer plots and scrubs with, built once from a bag: rollout_msgs/Timeline.

    with Bag("rollouts/run1") as bag:
        msg = timeline(bag)                       # envs 0..63 at most
        msg = timeline(bag, env_ids=[0, 5, 9])    # or exactly these

Reads /rollout/reward_terms (every message, one pass) and /rollout/episodes; nothing else.
Per-env series are [len(steps), len(env_ids)] row-major; the *_mean series are the recorded
means over all envs of the run. Size: 4 B x steps x len(env_ids) x (1 + terms), so by default
the per-env series cover every env only up to MAX_ENVS envs, and the first MAX_ENVS otherwise
(pass `env_ids` to choose others). Every env keeps its total at every step (`total_all`, 4 B x
steps x envs: 16 MB at 4,096 envs x 1,000 steps, where every term of every env would be 160 MB)
and each term's lowest and highest value over the run with its step (`term_min`, `term_max`,
[terms, envs]), so plots of the total and Find cover all envs; episode boundaries are kept for
every env.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rollout import topics as T
from rollout.bag import Bag
from rollout.codec import Message, get_type
from rollout.errors import BagError, RolloutError
from rollout.limits import check_allocation
from rollout.msg_checks import reward_terms_error
from rollout.replay.player import episode_ends

MAX_ENVS = 64
"""Envs covered by the per-env series when `env_ids` is not given."""


def default_env_ids(num_envs: int, max_envs: int = MAX_ENVS) -> np.ndarray:
    """Every env when there are at most `max_envs`, else the first `max_envs`."""
    return np.arange(min(num_envs, max_envs), dtype=np.int64)


def timeline(
    bag: Bag,
    env_ids: Sequence[int] | np.ndarray | None = None,
    *,
    max_envs: int = MAX_ENVS,
    episodes: tuple | None = None,
) -> Message:
    """The rollout_msgs/Timeline of `bag` (header left for the publisher to stamp).

    Args:
        env_ids: envs whose per-env total and term series to include; default
            `default_env_ids(num_envs, max_envs)`.
        episodes: `episode_ends(bag)` when the caller already has them (or `episode_events(bag)`:
            then every end counts as terminated, with no reason).

    Raises:
        RolloutError: an env id outside the run; BagError for reward messages that disagree
            on the number of envs.
    """
    Timeline = get_type("rollout_msgs/msg/Timeline")
    has_rewards = T.REWARD_TERMS in bag.topics and bag.count(T.REWARD_TERMS) > 0
    n_steps = bag.count(T.REWARD_TERMS) if has_rewards else 0
    ends = episode_ends(bag) if episodes is None else episodes
    ep_steps, ep_envs = np.asarray(ends[0], np.int64), np.asarray(ends[1], np.int64)
    ep_flags = np.asarray(ends[2], bool) if len(ends) > 2 else np.ones(ep_steps.size, bool)
    ep_reasons = list(ends[3]) if len(ends) > 3 else [""] * ep_steps.size
    episode_fields = {
        "episode_steps": ep_steps.astype(np.uint64),
        "episode_envs": ep_envs.astype(np.uint32),
        "episode_terminated": ep_flags,
        "episode_reasons": ep_reasons,
    }
    if not has_rewards:
        ids = np.asarray(env_ids if env_ids is not None else [], np.int64)
        return Timeline(
            env_ids=ids.astype(np.uint32),
            **episode_fields,
        )

    messages = bag.iter_decoded(T.REWARD_TERMS)
    first = next(messages)
    num_envs = int(first.total.size)
    ids = default_env_ids(num_envs, max_envs) if env_ids is None else np.asarray(list(env_ids), np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= num_envs):
        bad = int(ids[(ids < 0) | (ids >= num_envs)][0])
        raise RolloutError(f"env_ids: env {bad} is not in this run, which has {num_envs} envs (0-{num_envs - 1})")
    if (err := reward_terms_error(first)) is not None:
        raise BagError(f"{bag.path}: {err}")
    names = [t.name for t in first.terms]
    K, E = len(names), ids.size
    N = num_envs
    check_allocation(
        4 * n_steps * (E * (K + 1) + N) + 12 * n_steps * (K + 2) + 24 * K * N,
        f"{bag.path}: the timeline of {K} reward terms",
        BagError,
    )
    steps = np.empty(n_steps, np.uint64)
    sim_times = np.empty(n_steps, np.float64)
    total = np.empty((n_steps, E), np.float32)
    terms = np.full((K, n_steps, E), np.nan, np.float32)
    total_mean = np.empty(n_steps, np.float32)
    terms_mean = np.full((K, n_steps), np.nan, np.float32)
    total_all = np.empty((n_steps, N), np.float32)
    extremes = TermExtremes(K, N)
    row_of = {name: j for j, name in enumerate(names)}

    def fill(t: int, m: Message) -> None:
        if m.total.size != num_envs:
            raise BagError(
                f"{bag.path}: {T.REWARD_TERMS} message {t} has {m.total.size} envs, the first one {num_envs}"
            )
        steps[t], sim_times[t], total_mean[t] = m.step, m.sim_time, m.total_mean
        np.take(m.total, ids, out=total[t])
        total_all[t] = m.total
        for j, term in enumerate(m.terms):
            row = j if j < K and names[j] == term.name else row_of.get(term.name)
            if row is None or term.value.size != num_envs:
                continue  # a term the first message did not have: not in this timeline
            np.take(term.value, ids, out=terms[row, t])
            terms_mean[row, t] = term.mean
            extremes.add(row, int(m.step), term.value)

    fill(0, first)
    for t, m in enumerate(messages, start=1):
        fill(t, m)
    return Timeline(
        steps=steps,
        sim_times=sim_times,
        env_ids=ids.astype(np.uint32),
        term_names=names,
        total=total.reshape(-1),
        terms=terms.reshape(-1),
        total_mean=total_mean,
        terms_mean=terms_mean.reshape(-1),
        num_envs=N,
        total_all=total_all.reshape(-1),
        **extremes.fields(),
        **episode_fields,
    )


class TermExtremes:
    """Each env's lowest and highest value of each term over a run, with the step of each
    (the earliest when tied), gathered one message at a time; NaN never counts."""

    def __init__(self, num_terms: int, num_envs: int) -> None:
        shape = (num_terms, num_envs)
        self.low = np.full(shape, np.nan, np.float32)
        self.high = np.full(shape, np.nan, np.float32)
        self.low_steps = np.zeros(shape, np.uint64)
        self.high_steps = np.zeros(shape, np.uint64)

    def add(self, row: int, step: int, values: np.ndarray) -> None:
        """Term `row`'s values [N] at `step`."""
        for best, at, better in ((self.low, self.low_steps, np.less), (self.high, self.high_steps, np.greater)):
            cur, when = best[row], at[row]
            take = better(values, cur) | (np.isnan(cur) & ~np.isnan(values)) | ((values == cur) & (when > step))
            cur[take] = values[take]
            when[take] = step

    def fields(self) -> dict[str, np.ndarray]:
        """The Timeline fields, flat."""
        return {
            "term_min": self.low.reshape(-1),
            "term_min_steps": self.low_steps.reshape(-1),
            "term_max": self.high.reshape(-1),
            "term_max_steps": self.high_steps.reshape(-1),
        }


def timeline_arrays(msg: Message) -> dict[str, np.ndarray]:
    """A Timeline message's series in their shapes: steps [S], sim_times [S], env_ids [E],
    total [S, E], terms [K, S, E], total_mean [S], terms_mean [K, S], num_envs N, total_all
    [S, N], term_min/term_max and their steps [K, N], episode_steps [V],
    episode_envs [V], episode_terminated [V]; and term_names and episode_reasons as lists."""
    S, E, K = len(msg.steps), len(msg.env_ids), len(msg.term_names)
    return {
        "steps": np.asarray(msg.steps),
        "sim_times": np.asarray(msg.sim_times),
        "env_ids": np.asarray(msg.env_ids),
        "term_names": list(msg.term_names),
        "total": np.asarray(msg.total).reshape(S, E),
        "terms": np.asarray(msg.terms).reshape(K, S, E),
        "total_mean": np.asarray(msg.total_mean),
        "terms_mean": np.asarray(msg.terms_mean).reshape(K, S),
        "num_envs": int(msg.num_envs),
        "total_all": np.asarray(msg.total_all).reshape(S, int(msg.num_envs)),
        "term_min": np.asarray(msg.term_min).reshape(K, int(msg.num_envs)),
        "term_min_steps": np.asarray(msg.term_min_steps).reshape(K, int(msg.num_envs)),
        "term_max": np.asarray(msg.term_max).reshape(K, int(msg.num_envs)),
        "term_max_steps": np.asarray(msg.term_max_steps).reshape(K, int(msg.num_envs)),
        "episode_steps": np.asarray(msg.episode_steps),
        "episode_envs": np.asarray(msg.episode_envs),
        "episode_terminated": np.asarray(msg.episode_terminated, bool),
        "episode_reasons": list(msg.episode_reasons),
    }
