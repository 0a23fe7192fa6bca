"""Read rosbag2 MCAP bags (a bare `.mcap` file or a rosbag2 folder) as numpy, fast.

    with Bag("rollouts/run1") as bag:
        print(bag.topics)                                   # name -> TopicInfo(type, count, ...)
        obs = bag.read_arrays("/rollout/state", ["obs", "step"])   # {"obs": [T, N*obs_dim], "step": [T]}
        i = bag.seek_step("/rollout/state", 500)            # index of the first message at step >= 500
        state = bag.decode("/rollout/state", i)

Messages of a topic are numbered 0..count-1 in log-time order over all files of the bag. Only
the index records of the topics asked for are read, and only the chunks that hold the messages
asked for are touched. Arrays from `read_arrays` are preallocated once ([T, ...]) and filled by
copying each message's array straight out of the file mapping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from rollout.bag.mcapfile import McapFile
from rollout.bag.metadata import folder_files, is_latched
from rollout.codec import Message, TypeStore, deserialize
from rollout.codec.cdr import DTYPES
from rollout.errors import BagError, RolloutError


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag."""

    name: str
    type: str
    count: int
    serialization_format: str
    offered_qos_profiles: str
    type_hash: str

    @property
    def latched(self) -> bool:
        """Recorded from a transient-local publisher (e.g. the robot description)."""
        return is_latched(self.offered_qos_profiles)


@dataclass(frozen=True)
class RawMessage:
    """One recorded message, still serialized; `data` is valid until the bag is closed."""

    topic: str
    log_time: int
    publish_time: int
    sequence: int
    data: memoryview


@dataclass
class _TopicIndex:
    log_time: np.ndarray  # [T] int64, sorted
    file: np.ndarray  # [T] int16
    chunk: np.ndarray  # [T] int32
    offset: np.ndarray  # [T] int64


def bag_files(path: str | os.PathLike[str]) -> list[Path]:
    """The MCAP files of the bag at `path` (a `.mcap` file or a rosbag2 folder), in order."""
    p = Path(path)
    if not p.exists():
        raise BagError(f"{p} does not exist")
    if p.is_dir():
        files = folder_files(p)
        if not files:
            raise BagError(f"{p} is a folder with no .mcap files and no metadata.yaml; it is not a bag")
        return files
    return [p]


class Bag:
    """A bag opened for reading. Close it (or use `with`) to release the file mappings.

    Not thread-safe (it caches indexes and decompressed chunks): one Bag per thread.
    """

    def __init__(self, path: str | os.PathLike[str], *, recover: bool = False) -> None:
        """Open the bag at `path`.

        Args:
            path: a `.mcap` file or a rosbag2 folder (metadata.yaml, or `<name>_<N>.mcap` files).
            recover: read files cut short by a crash (their complete chunks) instead of raising;
                `rollout bag repair` makes such a file whole for other tools.
        """
        self.path = Path(path)
        self.files: list[McapFile] = []
        try:
            for f in bag_files(self.path):
                self.files.append(McapFile(f, scan=recover))
        except BaseException:
            self.close()
            raise
        self._store = TypeStore(roots=[], packages={})
        self._topics: dict[str, TopicInfo] = {}
        self._channels: dict[str, list[int | None]] = {}  # topic -> channel id in each file
        self._schemas: dict[str, str] = {}
        self._encodings: dict[str, str] = {}
        self._index: dict[str, _TopicIndex] = {}
        for k, f in enumerate(self.files):
            for ch in f.channels.values():
                schema = f.schemas.get(ch.schema_id)
                if schema is None:
                    raise BagError(f"{f.path}: channel {ch.topic} has no schema (schema id {ch.schema_id})")
                known = self._topics.get(ch.topic)
                if known is not None and known.type != schema.name:
                    raise BagError(f"topic {ch.topic} changes type between files ({known.type}, {schema.name})")
                count = f.stats.channel_message_counts.get(ch.id, 0) if f.stats else 0
                self._topics[ch.topic] = TopicInfo(
                    ch.topic,
                    schema.name,
                    count + (known.count if known else 0),
                    ch.message_encoding,
                    ch.metadata.get("offered_qos_profiles", ""),
                    ch.metadata.get("topic_type_hash", ""),
                )
                self._channels.setdefault(ch.topic, [None] * len(self.files))[k] = ch.id
                if schema.name not in self._schemas:
                    self._schemas[schema.name] = bytes(schema.data).decode(errors="replace")
                    self._encodings[schema.name] = schema.encoding

    # -- what is in the bag

    @property
    def topics(self) -> dict[str, TopicInfo]:
        """Every topic, in the order the recorder added them."""
        return dict(self._topics)

    def topic(self, name: str) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            have = ", ".join(self._topics) or "none"
            raise BagError(f"{self.path} has no topic {name} (topics: {have})")
        return info

    @property
    def message_count(self) -> int:
        return sum(t.count for t in self._topics.values())

    @property
    def start_time(self) -> int:
        """Log time of the first message, ns (0 for an empty bag)."""
        times = [f.stats.start for f in self.files if f.stats and f.stats.message_count]
        return min(times, default=0)

    @property
    def end_time(self) -> int:
        times = [f.stats.end for f in self.files if f.stats and f.stats.message_count]
        return max(times, default=0)

    @property
    def size(self) -> int:
        """Bytes on disk over all files."""
        return sum(f.size for f in self.files)

    def schema(self, msg_type: str) -> str:
        """The `ros2msg` schema text the bag stores for `msg_type`."""
        try:
            return self._schemas[msg_type]
        except KeyError:
            raise BagError(f"{self.path} has no schema for {msg_type}") from None

    def message_class(self, topic: str) -> type[Message]:
        """The message class of `topic`, built from the bag's own schema."""
        info = self.topic(topic)
        t = info.type
        if self._encodings[t] != "ros2msg" or info.serialization_format != "cdr":
            raise BagError(
                f"{topic} is stored as {info.serialization_format} with a {self._encodings[t]!r} schema; "
                "only cdr messages with ros2msg schemas can be decoded"
            )
        try:
            self._store.add_schema(t, self._schemas[t])
            return self._store.get(t)
        except RolloutError as e:
            raise BagError(f"{self.path}: the schema of {t} cannot be used: {e}") from None

    # -- index

    def _topic_index(self, topic: str) -> _TopicIndex:
        ix = self._index.get(topic)
        if ix is not None:
            return ix
        self.topic(topic)
        parts = []
        for k, f in enumerate(self.files):
            cid = self._channels[topic][k]
            if cid is None:
                continue
            ci = f.channel_index(cid)
            parts.append((ci.log_time, np.full(ci.log_time.size, k, np.int16), ci.chunk, ci.offset))
        if parts:
            t, fi, ch, off = (np.concatenate([p[j] for p in parts]) for j in range(4))
            order = np.argsort(t, kind="stable")
            ix = _TopicIndex(t[order], fi[order], ch[order], off[order])
        else:
            ix = _TopicIndex(np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0, np.int32), np.zeros(0, np.int64))
        self._index[topic] = ix
        return ix

    def count(self, topic: str) -> int:
        """Messages on `topic` found in the index (equals TopicInfo.count for a healthy bag)."""
        return int(self._topic_index(topic).log_time.size)

    def log_times(self, topic: str) -> np.ndarray:
        """[T] int64 receive times of every message on `topic`, ns, ascending."""
        return self._topic_index(topic).log_time.copy()

    def seek_time(self, topic: str, t: int) -> int:
        """Index of the first message on `topic` logged at or after `t` ns (count if none)."""
        return int(np.searchsorted(self._topic_index(topic).log_time, t, side="left"))

    # -- messages

    def raw(self, topic: str, i: int) -> RawMessage:
        """Message `i` of `topic`, serialized."""
        ix = self._topic_index(topic)
        n = ix.log_time.size
        if not -n <= i < n:
            raise BagError(f"{topic} has {n} messages; there is no message {i}")
        k = int(ix.file[i])
        cid, seq, log_time, pub, data = self.files[k].message(int(ix.chunk[i]), int(ix.offset[i]))
        self._check_indexed(topic, k, cid, log_time, int(ix.log_time[i]))
        return RawMessage(topic, log_time, pub, seq, data)

    def _check_indexed(self, topic: str, file: int, channel_id: int, log_time: int, indexed_time: int) -> None:
        """The message an index entry points at must be the one it describes (the index records
        carry no CRC; the chunk, which holds the message, does)."""
        if channel_id != self._channels[topic][file] or log_time != indexed_time:
            raise BagError(
                f"{self.files[file].path} is corrupt: its message index of {topic} points at another message; "
                f"`rollout bag repair {self.path}` rebuilds the index from the chunks"
            )

    def decode(self, topic: str, i: int) -> Message:
        """Message `i` of `topic`, decoded (arrays are views into the bag, valid until close)."""
        return self._decode(self.message_class(topic), topic, self.raw(topic, i).data)

    def _decode(self, cls: type[Message], topic: str, data: memoryview) -> Message:
        try:
            return deserialize(data, cls)
        except RolloutError as e:
            raise BagError(f"{self.path}: a message on {topic} does not decode: {e}") from None

    def messages(
        self,
        topics: Sequence[str] | None = None,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> Iterator[RawMessage]:
        """Serialized messages of `topics` (default: all) in log-time order, within
        [start_time, end_time) ns when given. Memory: the index of the chosen topics."""
        names = list(self._topics) if topics is None else list(topics)
        parts = []
        for k, name in enumerate(names):
            ix = self._topic_index(name)
            lo = 0 if start_time is None else np.searchsorted(ix.log_time, start_time, "left")
            hi = ix.log_time.size if end_time is None else np.searchsorted(ix.log_time, end_time, "left")
            sel = np.arange(lo, hi)
            parts.append((ix.log_time[lo:hi], np.full(sel.size, k, np.int32), sel))
        if not parts:
            return
        t, which, idx = (np.concatenate([p[j] for p in parts]) for j in range(3))
        # ties in log time: keep file order (file, chunk, offset)
        files = np.concatenate([self._topic_index(names[k]).file[p[2]] for k, p in enumerate(parts)])
        chunks = np.concatenate([self._topic_index(names[k]).chunk[p[2]] for k, p in enumerate(parts)])
        offsets = np.concatenate([self._topic_index(names[k]).offset[p[2]] for k, p in enumerate(parts)])
        order = np.lexsort((offsets, chunks, files, t))
        for j in order:
            name, k = names[int(which[j])], int(files[j])
            cid, seq, log_time, pub, data = self.files[k].message(int(chunks[j]), int(offsets[j]))
            self._check_indexed(name, k, cid, log_time, int(t[j]))
            yield RawMessage(name, log_time, pub, seq, data)

    def iter_decoded(self, topic: str, indices: Sequence[int] | np.ndarray | None = None) -> Iterator[Message]:
        """Decoded messages of `topic` (all, or those at `indices`), in that order."""
        cls = self.message_class(topic)
        ix = self._topic_index(topic)
        sel = np.arange(ix.log_time.size) if indices is None else np.asarray(indices, dtype=np.int64)
        files, chunks, offsets = ix.file[sel].tolist(), ix.chunk[sel].tolist(), ix.offset[sel].tolist()
        times = ix.log_time[sel].tolist()
        last = (-1, -1)
        for f, c, o, t in zip(files, chunks, offsets, times):
            if (f, c) != last:
                if last[0] >= 0:  # done with that chunk: drop its pages from this process's RSS
                    self.files[last[0]].release(last[1])
                last = (f, c)
            cid, _, log_time, _, data = self.files[f].message(c, o)
            self._check_indexed(topic, f, cid, log_time, t)
            yield self._decode(cls, topic, data)
        if last[0] >= 0:
            self.files[last[0]].release(last[1])

    # -- steps

    def _field_at(self, topic: str, i: int, field: str) -> Any:
        return getattr(self.decode(topic, i), field)

    def steps(self, topic: str) -> np.ndarray:
        """[T] int64 `step` field of every message on `topic` (decodes each message, zero-copy)."""
        cls = self.message_class(topic)
        if "step" not in cls.__fields__:
            raise BagError(f"{topic} ({self.topic(topic).type}) has no step field")
        n = self.count(topic)
        out = np.empty(n, np.int64)
        for k, m in enumerate(self.iter_decoded(topic)):
            out[k] = m.step
        return out

    def seek_step(self, topic: str, step: int) -> int:
        """Index of the first message on `topic` with `step` >= `step` (count if none).

        Binary search over the log-time index, decoding O(log T) messages of this topic only;
        a recording's steps grow with log time.
        """
        lo, hi = 0, self.count(topic)
        if hi and "step" not in self.message_class(topic).__fields__:
            raise BagError(f"{topic} ({self.topic(topic).type}) has no step field")
        while lo < hi:
            mid = (lo + hi) // 2
            if self._field_at(topic, mid, "step") < step:
                lo = mid + 1
            else:
                hi = mid
        return lo

    # -- stacking

    def read_arrays(
        self,
        topic: str,
        fields: Sequence[str],
        *,
        indices: Sequence[int] | np.ndarray | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        take: dict[str, np.ndarray] | None = None,
        out: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Fields of `topic` stacked over time.

        Args:
            fields: names of primitive fields: an array field gives [T, L] (L its length, which
                must be the same in every message), a scalar field gives [T].
            indices: which messages (positions in log-time order); default all, or those logged
                in [start_time, end_time) ns.
            take: for some array fields, the flat element indices to keep from each message
                (e.g. the columns of a subset of envs); the result is then [T, len(indices)].
            out: arrays to fill instead of allocating ([T, width] or [T] per field).

        Returns:
            {field: array}; dtypes as in the message definition (float32[] -> float32, ...).
        """
        ix = self._topic_index(topic)
        if indices is None:
            lo = 0 if start_time is None else int(np.searchsorted(ix.log_time, start_time, "left"))
            hi = ix.log_time.size if end_time is None else int(np.searchsorted(ix.log_time, end_time, "left"))
            sel = np.arange(lo, hi)
        else:
            sel = np.asarray(indices, dtype=np.int64)
        cls = self.message_class(topic)
        specs = {f.name: f for f in cls.__spec__.fields}
        for name in fields:
            f = specs.get(name)
            if f is None:
                raise BagError(f"{topic} ({cls.__msgtype__}) has no field {name!r}")
            if not f.type.is_primitive:
                raise BagError(f"field {name!r} of {cls.__msgtype__} is not a number or array of numbers")
        take = take or {}
        given = out is not None
        out = dict(out) if given else {}
        sizes: dict[str, int] = {}
        for t, m in enumerate(self.iter_decoded(topic, sel)):
            if t == 0:
                for name in fields:
                    v = getattr(m, name)
                    dtype = DTYPES[specs[name].type.base]
                    if specs[name].type.array:
                        sizes[name] = v.size
                        width = len(take[name]) if name in take else v.size
                        shape: tuple[int, ...] = (sel.size, width)
                    else:
                        shape = (sel.size,)
                    if not given:
                        out[name] = np.empty(shape, dtype)
                    elif out[name].shape != shape:
                        raise BagError(f"read_arrays: out[{name!r}] has shape {out[name].shape}, needs {shape}")
            for name in fields:
                dst = out[name]
                v = getattr(m, name)
                if dst.ndim == 2 and v.size != sizes[name]:
                    raise BagError(
                        f"{topic}: field {name!r} has {v.size} values in message {int(sel[t])}, "
                        f"{sizes[name]} in the first one; it cannot be stacked"
                    )
                if name in take:
                    np.take(v, take[name], out=dst[t])
                else:
                    dst[t] = v
        if not out:
            for name in fields:
                shape = (0, 0) if specs[name].type.array else (0,)
                out[name] = np.empty(shape, DTYPES[specs[name].type.base])
        return out

    # -- lifetime

    def close(self) -> None:
        """Release the files. Views from `raw`/`decode` must not be used afterwards."""
        for f in self.files:
            f.close()
        self._index = {}

    def __enter__(self) -> Bag:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def open_bag(path: str | os.PathLike[str], *, recover: bool = False) -> Bag:
    """Open a bag for reading (see `Bag`)."""
    return Bag(path, recover=recover)
