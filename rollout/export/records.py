"""Stacked rollout arrays ([T, N, ...]) as the `StepRecord`s the sim loop yields, and a bag of them.

`npz_to_bag` and `write_synthetic_rollout` build their messages here and in `RolloutMessages`
(the builder the sim node and `RolloutRecorder` use), so their bags hold the same messages a
recording of the same values would: state, action, reward terms, base poses, episode events
(and /tf with a URDF when the model allows it).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

import numpy as np

from rollout.bag import BagWriter
from rollout.messages import LATCHED_TOPICS, RolloutMessages
from rollout.sim import EpisodeEnds, Poses, StepRecord


def episode_ends(rew: np.ndarray, done: np.ndarray, terminated: np.ndarray) -> list[EpisodeEnds]:
    """For each of T steps, the episodes that ended there (as `run_steps` reports them).

    rew, done, terminated: [T, N]. An episode's return and length count from the step after its
    env's previous end, or from step 0 (an episode already running when the arrays start is
    counted from there). Whole-array: no loop over envs.
    """
    done = np.asarray(done, bool)
    T, N = done.shape
    prev_end = np.where(done, np.arange(T)[:, None], -1)
    np.maximum.accumulate(prev_end, axis=0, out=prev_end)  # latest end at or before t
    prev_end = np.vstack([np.full((1, N), -1), prev_end[:-1]])  # ... strictly before t
    csum = np.zeros((T + 1, N), np.float64)
    np.cumsum(rew, axis=0, dtype=np.float64, out=csum[1:])  # csum[k] = rew[:k].sum(0)
    ts, es = np.nonzero(done)  # ordered by step, then env
    starts = prev_end[ts, es] + 1
    returns = (csum[ts + 1, es] - csum[starts, es]).astype(np.float32)
    lengths = (ts - starts + 1).astype(np.uint32)
    ended = np.asarray(terminated, bool)[ts, es]
    cuts = np.searchsorted(ts, np.arange(1, T))
    return [
        EpisodeEnds(env_ids=i.astype(np.uint32), returns=r, lengths=n, terminated=k)
        for i, r, n, k in zip(*(np.split(a, cuts) for a in (es, returns, lengths, ended)))
    ]


@dataclass
class RolloutArrays:
    """A rollout as stacked arrays: T steps of N envs (any float dtype; converted per step)."""

    steps: np.ndarray
    """[T] int, control step numbers."""
    sim_time: np.ndarray
    """[T] float, seconds."""
    obs: np.ndarray
    """[T, N, O]."""
    act: np.ndarray
    """[T, N, A]."""
    rew: np.ndarray
    """[T, N]."""
    terms: np.ndarray
    """[T, K, N], reward terms in `EnvInfo.reward_term_names` order."""
    base_pos: np.ndarray
    """[T, N, 3]."""
    base_quat: np.ndarray
    """[T, N, 4], x, y, z, w."""
    done: np.ndarray
    """[T, N] bool."""
    terminated: np.ndarray
    """[T, N] bool."""
    truncated: np.ndarray
    """[T, N] bool."""
    joint_pos: np.ndarray | None = None
    """[T, N, J], or None for no joints."""
    body_poses: np.ndarray | None = None
    """[T, N, B, 7], or None for no bodies."""
    end_reasons: list[dict[int, str]] | None = None
    """[T] {env: why its episode ended} (NPZ `info[t]["end_reasons"]`), or None when unknown."""

    def records(self) -> Iterator[StepRecord]:
        """One `StepRecord` per step, episodes derived from the done flags and rewards."""
        f32 = np.float32
        T, N = self.rew.shape
        episodes = episode_ends(self.rew, self.done, self.terminated)
        if self.end_reasons is not None:
            episodes = [_with_reasons(e, self.end_reasons[t]) for t, e in enumerate(episodes)]
        no_joints, no_bodies = np.zeros((N, 0), f32), np.zeros((N, 0, 7), f32)
        for t in range(T):
            poses = Poses(
                base_pos=np.asarray(self.base_pos[t], f32),
                base_quat=np.asarray(self.base_quat[t], f32),
                joint_pos=np.asarray(self.joint_pos[t], f32) if self.joint_pos is not None else no_joints,
                body_poses=np.asarray(self.body_poses[t], f32) if self.body_poses is not None else no_bodies,
            )
            yield StepRecord(
                step=int(self.steps[t]),
                sim_time=float(self.sim_time[t]),
                obs=np.asarray(self.obs[t], f32),
                poses=poses,
                action=np.asarray(self.act[t], f32),
                policy_enabled=True,
                reward=np.asarray(self.rew[t], f32),
                terms=np.asarray(self.terms[t], f32),
                terminated=np.asarray(self.terminated[t], bool),
                truncated=np.asarray(self.truncated[t], bool),
                done=np.asarray(self.done[t], bool),
                episodes=episodes[t],
            )


def _with_reasons(ends: EpisodeEnds, reasons: Mapping[int, str]) -> EpisodeEnds:
    """`ends` naming why each episode ended, when every one of them has a reason."""
    named = [reasons.get(int(e)) for e in ends.env_ids]
    if not len(ends) or any(r is None for r in named):
        return ends
    return replace(ends, reasons=tuple(str(r) for r in named))


def write_records(
    bag: BagWriter,
    messages: RolloutMessages,
    records: Iterable[StepRecord],
    stamps: np.ndarray,
    *,
    latched_stamp: int,
    topics: Collection[str] | None = None,
    delays: Mapping[str, int] | None = None,
    drop: Mapping[str, Collection[int]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Declare the topics of `messages` on `bag` and write the latched messages, then every record.

    stamps: [T] header stamp (and log time) of each record, ns.
    topics: write only these topics (default: all that `messages` publishes).
    delays: {topic: ns} added to that topic's log times (as if received a little later).
    drop: {topic: record indices} messages left out (as if the recorder missed them); their
        sequence numbers are still used, so the gap shows.
    progress: called with (records written, T).
    """
    keep = [t for t in messages.topic_types if topics is None or t in topics]
    for topic in keep:
        bag.add_topic(topic, messages.topic_types[topic], latched=topic in LATCHED_TOPICS)
    delays, drop = delays or {}, drop or {}
    sequence: dict[str, int] = {}

    def write(items: list[tuple[str, bytes]], stamp: int, t: int) -> None:
        for topic, data in items:
            sequence[topic] = sequence.get(topic, 0) + 1
            if topic in keep and t not in drop.get(topic, ()):
                bag.write(topic, data, stamp + delays.get(topic, 0), sequence=sequence[topic])

    write(messages.latched(latched_stamp), latched_stamp, -1)
    T = len(stamps)
    for t, rec in enumerate(records):
        stamp = int(stamps[t])
        write(messages.step(rec, stamp), stamp, t)
        if progress is not None and (t % 64 == 0 or t == T - 1):
            progress(t + 1, T)
