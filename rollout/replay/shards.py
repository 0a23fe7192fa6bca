"""A set of shards read as one bag: every step's messages merged, envs concatenated in shard order.

    with ShardSet.open(["rollouts/rank0", "rollouts/rank1"]) as rollout:
        player = Player(rollout)                    # a Player (and `timeline`) reads it like a Bag
        state = rollout.decode("/rollout/state", 0)  # num_envs = N0 + N1: rank0's envs, then rank1's

Shards are found and ordered as `rollout.bag.shards` does (several bags, or one bag holding
several namespaced sims). Each topic is indexed by control step at open (the bags' indexes and
one zero-copy decode per message for its step; nothing is merged yet). `raw(topic, i)` then
decodes that step's message of every shard, concatenates the per-env arrays and encodes once:
one step in memory at a time, however long the rollout.

Only the control steps every shard recorded are played; `notes` says how many were left out.
Log times are the first shard's (hosts' clocks differ; one shard's keep a step's messages in
their recorded order). Episode events of a step merge the shards that had any.

Layout: when the shards' envs share an origin (`RobotDescription.env_spacing` > 0, as the sims
here record), the merged description carries N0 + N1 envs and every consumer lays them out on
one grid of that size; recorded State and EpisodeEvents poses are unchanged, and /tf,
/robot_description and /rollout/base_poses (which carry the grid offsets) are rebuilt for the
merged grid. When poses are already laid out by the sim (`env_spacing` 0), every shard's envs
sit around the same origin, so shard r is moved along +x to start `SHARD_GAP` metres past
shard r-1's envs (as placed at the first played step): its State, EpisodeEvents, base poses and
/tf positions are shifted by that offset, one constant per shard.
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from rollout import topics as T
from rollout.bag import Bag, RawMessage, TopicInfo
from rollout.bag.shards import ShardView, namespaces, shards_of
from rollout.codec import Message, deserialize, serialize
from rollout.errors import BagError
from rollout.model.layout import env_grid_offsets

SHARD_GAP = 2.0
"""Metres between neighbouring shards' envs when their poses are laid out by the sims (env_spacing 0)."""

STEPPED = (T.STATE, T.ACTION, T.REWARD_TERMS, T.BASE_POSES, T.TF)
"""Topics with one message per control step in every shard."""
LATCHED = (T.ROBOT, T.ROBOT_DESCRIPTION)
_SAME = ("obs_dim", "act_dim", "dt", "env_spacing", "body_names", "joint_names", "action_names",
         "reward_term_names", "env", "model_format", "model")  # fmt: skip  (the plainest difference is named)
_FRAME = re.compile(r"env(\d+)/(.*)", re.S)


@dataclass(frozen=True)
class _Index:
    steps: np.ndarray  # [M] int64 control step of each merged message
    log_time: np.ndarray  # [M] int64, the first shard's clock
    rows: np.ndarray  # [S, M] int64 message index in each shard, -1 where that shard has none


def robot_mismatch(views: Sequence[ShardView], robots: Sequence[Message]) -> str | None:
    """Why these shards' robot descriptions cannot be one rollout (one line), or None."""
    first = robots[0]
    for v, r in zip(views[1:], robots[1:]):
        for name in _SAME:
            a, b = getattr(first, name), getattr(r, name)
            if a != b if not isinstance(a, list) else list(a) != list(b):
                shown = "its model text" if name == "model" else f"{name} ({_short(a)} vs {_short(b)})"
                return f"{views[0].label} and {v.label} are not shards of one rollout: they differ in {shown}"
    return None


def _short(value: Any) -> str:
    text = str(list(value) if isinstance(value, list) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def layout_shifts(spacing: float, first_bases: Sequence[np.ndarray]) -> np.ndarray:
    """[S, 3] float32 offset added to each shard's positions: zeros when the envs share an origin
    (spacing > 0: the merged grid lays them out), else shard r starts SHARD_GAP past shard r-1 in x.

    first_bases: each shard's base positions [N_r, 3] at the first played step."""
    shifts = np.zeros((len(first_bases), 3), np.float32)
    if spacing > 0:
        return shifts
    edge = None
    for r, base in enumerate(first_bases):
        lo, hi = (float(base[:, 0].min()), float(base[:, 0].max())) if base.size else (0.0, 0.0)
        if edge is not None:
            shifts[r, 0] = edge + SHARD_GAP - lo
        edge = hi + float(shifts[r, 0])
    return shifts


def header_stamps(view: ShardView, topic: str) -> np.ndarray:
    """[M] int64 header stamp (ns) of each message on `topic`, read from its first bytes: a State's
    or PoseArray's own header, a TFMessage's first transform's (0 for an empty one)."""
    at = 8 if topic == T.TF else 4  # a TFMessage starts with its transforms' count
    out = np.zeros(view.count(topic), np.int64)
    for i in range(out.size):
        data = view.raw(topic, i).data
        if len(data) >= at + 8 and (at == 4 or struct.unpack_from("<I", data, 4)[0] > 0):
            sec, nsec = struct.unpack_from("<iI", data, at)
            out[i] = sec * 1_000_000_000 + nsec
    return out


def _shifted(a: np.ndarray, shift: np.ndarray, width: int) -> np.ndarray:
    """Flat poses `a` ([..., width], position first) with `shift` added to each position."""
    if not shift.any() or a.size == 0:
        return a
    out = np.array(a, np.float32).reshape(-1, width)
    out[:, :3] += shift
    return out.reshape(-1)


def _cat(parts: Sequence[Any], dtype: Any = None) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype).reshape(-1) for p in parts])


class ShardSet:
    """Shards of one rollout, read through the `Bag` interface the player, timeline and tools use."""

    def __init__(self, bags: Sequence[Bag]) -> None:
        """Merge the shards in `bags` (which stay the caller's; `open` makes a set that owns them).

        Raises:
            BagError: a bag with no rollout, the same namespace twice, shards of different runs
                (model, sizes or control rate), or no control step every shard has.
        """
        self._stack = ExitStack()
        self.views = shards_of(bags)
        views = self.views
        for v in views:
            if T.ROBOT not in v.topics or v.count(T.ROBOT) == 0:
                raise BagError(f"{v.label} has no {T.ROBOT} message; its envs cannot be told apart from another shard's")
        robots = [v.decode(T.ROBOT, 0) for v in views]
        if (err := robot_mismatch(views, robots)) is not None:
            raise BagError(err)
        self.robot = robots[0]
        self.sizes = np.array([int(r.num_envs) for r in robots], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.num_envs = int(self.sizes.sum())
        self.notes: list[str] = []

        state_steps = [v.steps(T.STATE) for v in views]
        common = state_steps[0]
        for s in state_steps[1:]:
            common = np.intersect1d(common, s)
        if common.size == 0:
            raise BagError("the shards have no control step in common: " + ", ".join(v.label for v in views))
        left = [int((~np.isin(s, common)).sum()) for s in state_steps]
        self.left_out = sum(left)
        self.common_steps = common

        self._index: dict[str, _Index] = {}
        self._topics: dict[str, TopicInfo] = {}
        have = [set(v.topics) for v in views]
        for name in T.RECORDED:
            if not any(name in h for h in have):
                continue
            if name == T.CAMERA:
                self.notes.append(f"{T.CAMERA} is left out: camera images of several shards do not merge")
                continue
            if name != T.EPISODES and not all(name in h for h in have):
                self.notes.append(f"{name} is left out: only some shards recorded it")
                continue
            ix = self._build_index(name, state_steps)
            if ix.steps.size:
                self._index[name] = ix
                self._topics[name] = dataclasses.replace(views[0].topic(name), count=int(ix.steps.size))

        spacing = float(self.robot.env_spacing)
        self._grids = [env_grid_offsets(int(n), spacing) for n in self.sizes]
        self._grid = env_grid_offsets(self.num_envs, spacing)
        first = [v.decode(T.STATE, int(np.searchsorted(s, common[0]))) for v, s in zip(views, state_steps)]
        self.shifts = layout_shifts(spacing, [np.asarray(m.base_pos, np.float32).reshape(-1, 3) for m in first])
        # per merged env: what to add to a recorded position that carries its shard's grid offset
        self._delta = np.concatenate(
            [self._grid[a : a + n] - g + s for a, n, g, s in zip(self.starts, self.sizes, self._grids, self.shifts)]
        ).astype(np.float64)
        self._tf_envs: list[int] = []
        self._urdf: str | None = None
        if T.ROBOT_DESCRIPTION in self._topics:
            self._prepare_urdf()
        self._cache: dict[str, tuple[int, RawMessage]] = {}

        spans = ", ".join(f"envs {a}-{a + n - 1}: {v.label}" for v, a, n in zip(views, self.starts, self.sizes))
        self.summary = (
            f"{len(views)} shard{'s' * (len(views) != 1)} as one rollout of {self.num_envs} envs ({spans}); "
            f"{common.size} steps every shard has"
            + (", " + ", ".join(f"{n} of {v.label} left out" for v, n in zip(views, left) if n) if self.left_out else "")
        )
        if spacing <= 0 and len(views) > 1:
            self.notes.append(
                "poses are laid out by the sims (env_spacing 0): shards moved along +x, "
                + ", ".join(f"{v.label} by {s[0]:.2f} m" for v, s in zip(views, self.shifts))
            )

    @classmethod
    def open(cls, paths: Sequence[str | os.PathLike[str]]) -> ShardSet:
        """Open the bags at `paths` and merge their shards; closing the set closes them."""
        if not paths:
            raise BagError("no bags given")
        stack = ExitStack()
        try:
            merged = cls([stack.enter_context(Bag(p)) for p in paths])
        except BaseException:
            stack.close()
            raise
        merged._stack = stack.pop_all()
        return merged

    # -- the merged index

    def _shard_steps(self, r: int, name: str, state_steps: list[np.ndarray]) -> np.ndarray:
        """Control step of each of shard r's messages on `name`. Topics without a step field take
        the step of the State with the same header stamp (the sim stamps a step's messages alike;
        a recorder's log times may interleave them), else of the last State logged before them."""
        v = self.views[r]
        if name not in (T.BASE_POSES, T.TF):
            return v.steps(name)
        k = np.searchsorted(v.log_times(T.STATE), v.log_times(name), "right") - 1
        steps = np.where(k >= 0, state_steps[r][np.maximum(k, 0)], -1)
        state = header_stamps(v, T.STATE)
        order = np.argsort(state, kind="stable")
        mine = header_stamps(v, name)
        j = np.minimum(np.searchsorted(state[order], mine), state.size - 1)
        same = (state[order][j] == mine) & (mine > 0)
        steps[same] = state_steps[r][order[j[same]]]
        return steps

    def _build_index(self, name: str, state_steps: list[np.ndarray]) -> _Index:
        S = len(self.views)
        if name in LATCHED:
            t = self.views[0].log_times(name)[:1]
            return _Index(np.zeros(1, np.int64), t, np.zeros((S, 1), np.int64))
        rows = np.full((S, self.common_steps.size), -1, np.int64)
        for r, v in enumerate(self.views):
            if name not in v.topics or v.count(name) == 0:
                continue
            steps = self._shard_steps(r, name, state_steps)
            _, first = np.unique(steps, return_index=True)  # a step recorded twice: its first message
            k = np.searchsorted(steps[first], self.common_steps)
            hit = (k < first.size) & (steps[first][np.minimum(k, first.size - 1)] == self.common_steps)
            rows[r, hit] = first[k[hit]]
        keep = (rows >= 0).all(axis=0) if name in STEPPED else (rows >= 0).any(axis=0)
        rows = rows[:, keep]
        steps = self.common_steps[keep]
        ref = self.views[0]
        if name in STEPPED:
            t = ref.log_times(name)[rows[0]]
        else:  # the first shard's own message, else its State of that step
            state_t = ref.log_times(T.STATE)[np.searchsorted(state_steps[0], steps)]
            own = ref.log_times(name)[np.maximum(rows[0], 0)] if (rows[0] >= 0).any() else state_t
            t = np.where(rows[0] >= 0, own, state_t)
        return _Index(steps, t.astype(np.int64), rows)

    def _prepare_urdf(self) -> None:
        """The merged /robot_description: the envs each shard drew in Foxglove, at their merged places."""
        from rollout.model import ModelError, load_model, mjcf_to_urdf

        envs = []
        for v, a in zip(self.views, self.starts):
            urdf = str(v.decode(T.ROBOT_DESCRIPTION, 0).data)
            envs += sorted({int(k) + int(a) for k in re.findall(r'<link name="env(\d+)/', urdf)})
        try:
            model = load_model(self.robot.model, self.robot.model_format or "mjcf")
            offsets = self._grid[envs] + np.repeat(self.shifts, self.sizes, axis=0)[envs]
            self._urdf = mjcf_to_urdf(model, envs=envs, offsets=offsets, model_format=self.robot.model_format or "mjcf")
            self._tf_envs = envs
        except (ModelError, ValueError) as e:
            self.notes.append(f"{T.TF} and {T.ROBOT_DESCRIPTION} are left out: the model does not convert to URDF ({e})")
            del self._topics[T.ROBOT_DESCRIPTION], self._index[T.ROBOT_DESCRIPTION]
            self._topics.pop(T.TF, None)
            self._index.pop(T.TF, None)

    # -- what a Bag tells

    @property
    def path(self) -> Path:
        return self.views[0].path

    @property
    def label(self) -> str:
        return " + ".join(v.label for v in self.views)

    @property
    def topics(self) -> dict[str, TopicInfo]:
        return dict(self._topics)

    def topic(self, name: str) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise BagError(f"the shards ({self.label}) have no merged topic {name} (topics: {', '.join(self._topics)})")
        return info

    def count(self, topic: str) -> int:
        return int(self._ix(topic).steps.size)

    def log_times(self, topic: str) -> np.ndarray:
        return self._ix(topic).log_time.copy()

    def steps(self, topic: str) -> np.ndarray:
        """[M] int64 control step of each merged message on `topic` (from the index, no decode)."""
        return self._ix(topic).steps.copy()

    def seek_step(self, topic: str, step: int) -> int:
        return int(np.searchsorted(self._ix(topic).steps, step, "left"))

    def seek_time(self, topic: str, t: int) -> int:
        return int(np.searchsorted(self._ix(topic).log_time, t, "left"))

    @property
    def message_count(self) -> int:
        return sum(info.count for info in self._topics.values())

    @property
    def start_time(self) -> int:
        return min(int(ix.log_time[0]) for ix in self._index.values())

    @property
    def end_time(self) -> int:
        return max(int(ix.log_time[-1]) for ix in self._index.values())

    def schema(self, msg_type: str) -> str:
        return self.views[0].bag.schema(msg_type)

    def message_class(self, topic: str) -> type[Message]:
        self.topic(topic)
        return self.views[0].bag.message_class(T.namespaced(topic, self.views[0].namespace))

    def _ix(self, topic: str) -> _Index:
        self.topic(topic)
        return self._index[topic]

    # -- messages

    def raw(self, topic: str, i: int) -> RawMessage:
        """Merged message `i` of `topic`, serialized (the last one of each topic is kept)."""
        i = self._position(topic, i)
        hit = self._cache.get(topic)
        if hit is not None and hit[0] == i:
            return hit[1]
        merged = self._merged(topic, i)
        data = merged if isinstance(merged, bytes) else serialize(merged)
        t = int(self._index[topic].log_time[i])
        msg = RawMessage(topic, t, t, i, memoryview(data))
        self._cache[topic] = (i, msg)
        return msg

    def decode(self, topic: str, i: int) -> Message:
        """Merged message `i` of `topic` (built directly, not encoded and decoded again)."""
        i = self._position(topic, i)
        hit = self._cache.get(topic)
        merged = hit[1].data if hit is not None and hit[0] == i else self._merged(topic, i)
        return merged if isinstance(merged, Message) else deserialize(merged, self.message_class(topic))

    def iter_decoded(self, topic: str, indices: Sequence[int] | np.ndarray | None = None) -> Iterator[Message]:
        sel = range(self.count(topic)) if indices is None else np.asarray(indices, np.int64).tolist()
        for i in sel:
            yield self.decode(topic, int(i))

    def _position(self, topic: str, i: int) -> int:
        n = self.count(topic)
        if not -n <= i < n:
            raise BagError(f"{topic} has {n} merged messages; there is no message {i}")
        return i % n

    def messages(
        self, topics: Sequence[str] | None = None, *, start_time: int | None = None, end_time: int | None = None
    ) -> Iterator[RawMessage]:
        """Merged messages of `topics` (default: all) in log-time order, within [start_time, end_time)."""
        names = list(self._topics) if topics is None else list(topics)
        t = np.concatenate([self._ix(n).log_time for n in names]) if names else np.zeros(0, np.int64)
        which = np.concatenate([np.full(self.count(n), k) for k, n in enumerate(names)]) if names else t
        idx = np.concatenate([np.arange(self.count(n)) for n in names]) if names else t
        keep = np.ones(t.size, bool)
        if start_time is not None:
            keep &= t >= start_time
        if end_time is not None:
            keep &= t < end_time
        for j in np.flatnonzero(keep)[np.argsort(t[keep], kind="stable")]:
            yield self.raw(names[int(which[j])], int(idx[j]))

    def read_arrays(self, topic: str, fields: Sequence[str], **_: Any) -> dict[str, np.ndarray]:
        """Primitive fields of `topic` stacked over the merged messages ([M, L] or [M])."""
        rows = {name: [] for name in fields}
        for m in self.iter_decoded(topic):
            for name in fields:
                rows[name].append(np.asarray(getattr(m, name)).copy())
        return {name: np.stack(v) if v else np.zeros(0) for name, v in rows.items()}

    # -- merging one step

    def _merged(self, topic: str, i: int) -> Message | bytes:
        """Every shard's message of merged position `i` on `topic`, as one message (base poses: its bytes)."""
        rows = self._index[topic].rows[:, i]
        if topic == T.BASE_POSES:  # read as bytes: decoding a PoseArray builds a Python object per env
            return self._merged_base_poses([bytes(v.raw(topic, int(j)).data) for v, j in zip(self.views, rows)])
        parts = [(r, v.decode(topic, int(j))) for r, (v, j) in enumerate(zip(self.views, rows)) if j >= 0]
        ms = [m for _, m in parts]
        if topic == T.ROBOT:
            return self._merged_robot(ms[0])
        if topic == T.ROBOT_DESCRIPTION:
            return type(ms[0])(data=self._urdf)
        if topic == T.STATE:
            return self._merged_state(ms)
        if topic == T.ACTION:
            return self._merged_action(ms)
        if topic == T.REWARD_TERMS:
            return self._merged_rewards(ms)
        if topic == T.EPISODES:
            return self._merged_episodes(parts)
        if topic == T.TF:
            return self._merged_tf(parts)
        raise BagError(f"{topic} cannot be merged")  # not indexed: see __init__

    def _merged_robot(self, r: Message) -> Message:
        fields = {name: getattr(r, name) for name in r.__fields__}
        fields["num_envs"] = self.num_envs
        return type(r)(**fields)

    def _merged_state(self, ms: list[Message]) -> Message:
        m0, sh = ms[0], self.shifts
        return type(m0)(
            header=m0.header, step=m0.step, sim_time=m0.sim_time, num_envs=self.num_envs, obs_dim=m0.obs_dim,
            num_joints=m0.num_joints, num_bodies=m0.num_bodies,
            obs=_cat([m.obs for m in ms]),
            base_pos=_cat([_shifted(m.base_pos, s, 3) for m, s in zip(ms, sh)]),
            base_quat=_cat([m.base_quat for m in ms]),
            joint_pos=_cat([m.joint_pos for m in ms]),
            body_poses=_cat([_shifted(m.body_poses, s, 7) for m, s in zip(ms, sh)]),
            done=_cat([m.done for m in ms], bool),
            terminated=_cat([m.terminated for m in ms], bool),
            truncated=_cat([m.truncated for m in ms], bool),
        )  # fmt: skip

    def _merged_action(self, ms: list[Message]) -> Message:
        m0 = ms[0]
        return type(m0)(
            header=m0.header, step=m0.step, sim_time=m0.sim_time, num_envs=self.num_envs, act_dim=m0.act_dim,
            policy_enabled=all(bool(m.policy_enabled) for m in ms), action=_cat([m.action for m in ms]),
        )  # fmt: skip

    def _merged_rewards(self, ms: list[Message]) -> Message:
        m0 = ms[0]
        terms = []
        for term in m0.terms:
            values = _cat([next((t.value for t in m.terms if t.name == term.name), np.full(n, np.nan))
                           for m, n in zip(ms, self.sizes)], np.float32)  # fmt: skip
            terms.append(type(term)(name=term.name, mean=float(np.nanmean(values)) if values.size else 0.0, value=values))
        total = _cat([m.total for m in ms], np.float32)
        return type(m0)(header=m0.header, step=m0.step, sim_time=m0.sim_time, terms=terms,
                        total_mean=float(total.mean()) if total.size else 0.0, total=total)  # fmt: skip

    def _merged_episodes(self, parts: list[tuple[int, Message]]) -> Message:
        m0 = parts[0][1]
        bodies = {int(m.num_bodies) for _, m in parts}
        poses = len(bodies) == 1 and bodies != {0}  # terminal poses only when every shard gave them alike
        nb = bodies.pop() if poses else 0
        return type(m0)(
            header=m0.header, step=m0.step, sim_time=m0.sim_time,
            env_ids=_cat([np.asarray(m.env_ids, np.int64) + self.starts[r] for r, m in parts], np.uint32),
            returns=_cat([m.returns for _, m in parts], np.float32),
            lengths=_cat([m.lengths for _, m in parts], np.uint32),
            terminated=_cat([m.terminated for _, m in parts], bool),
            reasons=[why for _, m in parts for why in m.reasons],
            num_bodies=nb,
            final_base_pos=_cat([_shifted(m.final_base_pos, self.shifts[r], 3) if poses else [] for r, m in parts], np.float32),
            final_base_quat=_cat([m.final_base_quat if poses else [] for _, m in parts], np.float32),
            final_body_poses=_cat([_shifted(m.final_body_poses, self.shifts[r], 7) if poses else [] for r, m in parts], np.float32),
        )  # fmt: skip

    def _merged_base_poses(self, datas: list[bytes]) -> bytes:
        """geometry_msgs/PoseArray bytes: every shard's poses, moved from its grid to the merged one."""
        from rollout.model import pose_array_cdr

        poses, stamp, frame = [], (0, 0), "world"
        for k, data in enumerate(datas):
            sec, nsec, n_name = struct.unpack_from("<iII", data, 4)
            head = 12 + n_name  # stamp, frame_id length and text; CDR aligns from after the 4-byte header
            (count,) = struct.unpack_from("<I", data, 4 + head + (-head % 4))
            arr = np.frombuffer(data, "<f8", count=count * 7, offset=len(data) - count * 56).reshape(count, 7)
            if k == 0:
                stamp, frame = (sec, nsec), data[16 : 16 + n_name - 1].decode()
            poses.append(arr)
        p = np.concatenate(poses) if poses else np.zeros((0, 7))
        return pose_array_cdr(p[:, :3] + self._delta, p[:, 3:], stamp[0] * 1_000_000_000 + stamp[1], frame_id=frame)

    def _merged_tf(self, parts: list[tuple[int, Message]]) -> Message:
        """Every shard's transforms with its env frames renamed to the merged envs, roots moved, all
        stamped with the first shard's time (as the merged State and base poses are)."""
        m0 = parts[0][1]
        stamp = next((m.transforms[0].header.stamp for _, m in parts if m.transforms), None)  # the first shard's time
        out = []
        for r, m in parts:
            a = int(self.starts[r])
            for tr in m.transforms:
                tr.header.stamp = stamp
                child = _FRAME.fullmatch(tr.child_frame_id)
                parent = _FRAME.fullmatch(tr.header.frame_id)
                if child is None:
                    out.append(tr)
                    continue
                g = int(child.group(1)) + a
                tr.child_frame_id = f"env{g}/{child.group(2)}"
                if parent is not None:
                    tr.header.frame_id = f"env{int(parent.group(1)) + a}/{parent.group(2)}"
                else:  # a root: its world position carries the shard's grid offset
                    d = self._delta[g]
                    v = tr.transform.translation
                    v.x, v.y, v.z = v.x + float(d[0]), v.y + float(d[1]), v.z + float(d[2])
                out.append(tr)
        return type(m0)(transforms=out)

    # -- lifetime

    def close(self) -> None:
        self._cache = {}
        self._stack.close()

    def __enter__(self) -> ShardSet:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def bag_paths(text: str) -> list[str]:
    """'rollouts/rank0, rollouts/rank1' -> ['rollouts/rank0', 'rollouts/rank1'] (a set of shards)."""
    return [p.strip() for p in text.split(",") if p.strip()]


def open_rollout(paths: Sequence[str | os.PathLike[str]]) -> Bag | ShardSet:
    """One bag of plain rollout topics as itself; several bags, or one holding namespaced sims, as a `ShardSet`."""
    if not paths:
        raise BagError("no bags given")
    stack = ExitStack()
    try:
        bags = [stack.enter_context(Bag(p)) for p in paths]
        if len(bags) == 1 and namespaces(bags[0]) in ([], [""]):
            stack.pop_all()
            return bags[0]
        merged = ShardSet(bags)
    except BaseException:
        stack.close()
        raise
    merged._stack = stack.pop_all()
    return merged
