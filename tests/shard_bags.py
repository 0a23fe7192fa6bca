"""Small shard bags for tests: sims under their own namespaces, recorded straight into bags."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

from rollout.bag import BagWriter
from rollout.messages import LATCHED_TOPICS, RolloutMessages, RunIdentity
from rollout.policy import policy_for_env
from rollout.sim import make_env, run_steps
from rollout.topics import namespaced


def record_shards(
    out: Path,
    shards: Sequence[tuple[str, int]],
    *,
    steps: int = 12,
    env: str = "synthetic:humanoid",
    skip: dict[str, Sequence[int]] | None = None,
    env_spacing: float | None = None,
    early: Sequence[str] = (),
    **env_kwargs: object,
) -> Path:
    """One bag at `out` holding a sim per (namespace, num_envs) in `shards`, each seeded by its place;
    `skip[namespace]` names steps that shard leaves unrecorded; `env_spacing` overrides the env's
    (0: poses laid out by the sim, here all around one origin); topics in `early` are logged 1 µs
    before their step's State, as a recorder's receive times may interleave them. Returns `out`."""
    runs = []
    for k, (ns, n) in enumerate(shards):
        e = make_env(env, num_envs=n, seed=k + 1, **env_kwargs)
        if env_spacing is not None:
            e.info = dataclasses.replace(e.info, env_spacing=env_spacing)
        messages = RolloutMessages(e.info, RunIdentity(seed=k + 1), tf_envs=(0, 1))
        steps_of = run_steps(e, policy_for_env(e, "random", seed=k + 1), seed=k + 1, steps=steps)
        runs.append((ns, messages, steps_of, set((skip or {}).get(ns, ()))))
    with BagWriter(out) as bag:
        for ns, messages, _, _ in runs:
            for topic, type_name in messages.topic_types.items():
                bag.add_topic(namespaced(topic, ns), type_name, latched=topic in LATCHED_TOPICS)
        for ns, messages, _, _ in runs:
            for topic, data in messages.latched(time.time_ns()):
                bag.write(namespaced(topic, ns), data, time.time_ns())
        for recs in zip(*(r[2] for r in runs)):
            for (ns, messages, _, skipped), rec in zip(runs, recs):
                if rec.step in skipped:
                    continue
                stamp = time.time_ns()
                for topic, data in messages.step(rec, stamp):
                    bag.write(namespaced(topic, ns), data, stamp - 1000 if topic in early else stamp)
    return out
