"""Write rosbag2-compatible MCAP bags from serialized (CDR) messages.

    with BagWriter("rollouts/run1", compression="lz4") as bag:     # folder: run1/run1_0.mcap + metadata.yaml
        bag.add_topic("/rollout/state", "rollout_msgs/msg/State")
        bag.write("/rollout/state", cdr_bytes, log_time_ns)

The layout is the one rosbag2's MCAP storage plugin writes (profile `ros2`, `ros2msg` schemas
with their dependencies, `cdr` channels carrying `offered_qos_profiles` and `topic_type_hash`,
chunks with message indexes, a summary with Statistics and chunk indexes). The records are
written by the `mcap` library's Writer, with chunk and summary CRCs on; what is ours is the
rosbag2 layer around it: folders, splitting, metadata.yaml, QoS and type-hash metadata, and a
chunk of its own for a message as large as a chunk (the chunk in progress is flushed before it).

Crash safety: the file is only ever appended to, each record the writer hands over in one
unbuffered write, so a process killed at any point leaves every chunk written before it intact;
`repair()` turns such a file back into an indexed one. A path ending in `.mcap` gives a bare file; any other path a rosbag2
folder, which can be split by size or duration into `<name>_0.mcap`, `<name>_1.mcap`, ...
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from rollout import __version__
from rollout.bag import records as rec
from mcap.writer import CompressionType, Writer

from rollout.bag.compression import Compression
from rollout.bag.metadata import FileEntry, TopicEntry, metadata_yaml, offered_qos_yaml, write_metadata
from rollout.errors import BagError

DEFAULT_CHUNK_SIZE = 768 * 1024  # libmcap's default, which rosbag2 keeps
LIBRARY = f"rollout {__version__}"
SCHEMA_ENCODING = "ros2msg"
MESSAGE_ENCODING = "cdr"

_COMPRESSION = {"none": CompressionType.NONE, "lz4": CompressionType.LZ4, "zstd": CompressionType.ZSTD}
_NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def topic_name_error(name: str) -> str | None:
    """Why `name` is not a valid absolute ROS topic name, or None if it is."""
    if not name.startswith("/"):
        return f"topic {name!r} must start with '/'"
    if name == "/" or name.endswith("/"):
        return f"topic {name!r} must not end with '/'"
    for token in name[1:].split("/"):
        if not _NAME_TOKEN.match(token):
            return f"topic {name!r}: each part must be letters, digits and '_', not starting with a digit"
    return None


def full_type_name(name: str) -> str:
    """`pkg/Name` or `pkg/msg/Name` as `pkg/msg/Name`."""
    parts = name.split("/")
    if len(parts) == 2:
        return f"{parts[0]}/msg/{parts[1]}"
    if len(parts) == 3 and all(parts):
        return name
    raise BagError(f"message type {name!r} must look like pkg/msg/Name")


class _AppendOnlyFile:
    """The stream the `mcap` writer writes to: every record it hands over goes to the file at once,
    whole (no user-space buffer), so a process killed at any point leaves every earlier chunk intact."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as e:
            raise BagError(f"cannot create {path}: {e.strerror}") from None
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        try:
            while view.nbytes:
                n = os.write(self._fd, view)
                self.size += n
                view = view[n:]
        except OSError as e:
            raise BagError(f"cannot write {self.path}: {e.strerror}") from None
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self, fsync: bool) -> None:
        try:
            if fsync:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)


class _McapFile:
    """One MCAP file written by the `mcap` library's Writer (chunk CRCs, message indexes, summary
    with statistics), with ids kept equal to the bag's own schema and channel numbers."""

    def __init__(self, path: Path, compression: Compression, chunk_size: int, chunk_crc: bool) -> None:
        self.path = path
        self._stream = _AppendOnlyFile(path)
        self._chunk_size = chunk_size
        self._writer = Writer(
            self._stream,  # type: ignore[arg-type]
            chunk_size=chunk_size,
            compression=_COMPRESSION[compression],
            enable_crcs=chunk_crc,
        )
        self._writer.start(profile=rec.PROFILE, library=LIBRARY)
        self._schemas: dict[int, int] = {}  # our schema id -> the writer's
        self._channels: dict[int, int] = {}

    @property
    def size(self) -> int:
        return self._stream.size

    def add_schema(self, schema_id: int, name: str, data: bytes) -> None:
        self._schemas[schema_id] = self._writer.register_schema(name, SCHEMA_ENCODING, data)

    def add_channel(self, channel_id: int, schema_id: int, topic: str, metadata: dict[str, str]) -> None:
        self._channels[channel_id] = self._writer.register_channel(
            topic, MESSAGE_ENCODING, self._schemas[schema_id], metadata
        )

    def write(self, channel_id: int, data: Any, log_time: int, publish_time: int, sequence: int) -> None:
        if not isinstance(data, bytes):
            data = memoryview(data).cast("B")
        if len(data) >= self._chunk_size:
            self._writer.flush()  # a big message gets a chunk of its own (it closes as soon as it is added)
        self._writer.add_message(self._channels[channel_id], log_time, data, publish_time, sequence & 0xFFFFFFFF)

    def finish_chunk(self) -> None:
        """Write the chunk in progress, if any."""
        self._writer.flush()

    def close(self, fsync: bool) -> None:
        """Write the last chunk, the summary and the footer, and close the file."""
        try:
            self._writer.finish()
        finally:
            self._stream.close(fsync)


@dataclass
class _Topic:
    name: str
    type: str
    schema_id: int
    channel_id: int
    qos: str
    type_hash: str
    count: int = 0


@dataclass
class _FileStats:
    path: Path
    start: int = 0
    end: int = 0
    count: int = 0


class BagWriter:
    """Writes serialized messages into a rosbag2-compatible MCAP bag (folder or bare file).

    Thread-safe: `write` may be called from several subscription threads.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        compression: Compression = "none",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        split_size: int = 0,
        split_duration: float = 0.0,
        chunk_crc: bool = True,
        fsync: bool = False,
        custom_data: dict[str, str] | None = None,
    ) -> None:
        """Create the bag.

        Args:
            path: a folder to create (rosbag2 layout, `metadata.yaml` written on close), or a
                path ending in `.mcap` for a single bare file. Must not exist yet (an empty
                folder is accepted).
            compression: chunk compression, "none" (rosbag2's default), "lz4" or "zstd".
            chunk_size: bytes of records per chunk before it is written (libmcap's 768 KiB).
            split_size: start a new file once the current one reaches this many bytes (0: never).
            split_duration: start a new file when a message is more than this many seconds
                after the current file's first message (0: never).
            chunk_crc: store a CRC-32 of each chunk and of the summary, checked on every read (the
                `mcap` writer's default; costs nothing measurable, bench/bag_write.py).
            fsync: fsync each file when it is closed.
            custom_data: string pairs for metadata.yaml's `custom_data` (folder bags).
        """
        p = Path(path)
        self.path = p
        self._bare = p.suffix == ".mcap"
        if chunk_size < 1:
            raise BagError(f"chunk size must be positive, got {chunk_size}")
        if split_size < 0 or split_duration < 0:
            raise BagError("split size and duration must not be negative")
        if self._bare and (split_size or split_duration):
            raise BagError(f"{p}: a bare .mcap file cannot be split; give a folder path to split the bag")
        if split_size and split_size < 1024:
            raise BagError(f"split size must be at least 1024 bytes (rosbag2's minimum), got {split_size}")
        if self._bare:
            if p.exists():
                raise BagError(f"{p} already exists; choose another output path")
            p.parent.mkdir(parents=True, exist_ok=True)
        else:
            if p.exists() and (not p.is_dir() or any(p.iterdir())):
                raise BagError(f"{p} already exists and is not an empty folder; choose another output path")
            p.mkdir(parents=True, exist_ok=True)
        if compression not in _COMPRESSION:
            raise BagError(f"unknown compression {compression!r}; choose none, lz4 or zstd")
        self._compression = compression
        self._chunk_size = chunk_size
        self._chunk_crc = chunk_crc
        self._fsync = fsync
        self._split_size = split_size
        self._split_ns = int(split_duration * 1e9)
        self._custom = dict(custom_data or {})
        self._topics: dict[str, _Topic] = {}
        self._schemas: dict[str, tuple[int, bytes]] = {}
        self._files: list[_FileStats] = []
        self._lock = threading.Lock()
        self._closed = False
        self._open_next_file()

    # -- files

    def _open_next_file(self) -> None:
        if self._bare:
            path = self.path
        else:
            path = self.path / f"{self.path.name}_{len(self._files)}.mcap"
        self._file = _McapFile(path, self._compression, self._chunk_size, self._chunk_crc)
        self._files.append(_FileStats(path))
        for name, (schema_id, data) in self._schemas.items():
            self._file.add_schema(schema_id, name, data)
        for t in self._topics.values():
            self._file.add_channel(t.channel_id, t.schema_id, t.name, self._channel_metadata(t))

    def _should_split(self, log_time: int) -> bool:
        stats = self._files[-1]
        if not stats.count:
            return False
        if self._split_size and self._file.size >= self._split_size:
            return True
        return bool(self._split_ns) and log_time - stats.start > self._split_ns

    @staticmethod
    def _channel_metadata(t: _Topic) -> dict[str, str]:
        return {"offered_qos_profiles": t.qos, "topic_type_hash": t.type_hash}

    # -- public

    def add_topic(
        self,
        topic: str,
        msg_type: str,
        *,
        latched: bool = False,
        qos: str | None = None,
        schema: str | None = None,
        type_hash: str | None = None,
    ) -> None:
        """Declare a topic before writing to it.

        Args:
            topic: absolute ROS topic name, e.g. "/rollout/state".
            msg_type: "pkg/msg/Name".
            latched: offered QoS is transient local (e.g. /rollout/robot); ignored if `qos` is given.
            qos: the `offered_qos_profiles` YAML string to store (see `offered_qos_yaml`).
            schema: the `ros2msg` schema text; by default `rollout.codec.schema_text(msg_type)`.
            type_hash: RIHS01 hash; by default `rollout.codec.type_hash(msg_type)`.
        """
        if err := topic_name_error(topic):
            raise BagError(err)
        msg_type = full_type_name(msg_type)
        with self._lock:
            self._check_open()
            known = self._topics.get(topic)
            if known is not None:
                if known.type != msg_type:
                    raise BagError(f"topic {topic} was added as {known.type}, not {msg_type}")
                return
            if schema is None or type_hash is None:
                from rollout import codec

                schema = codec.schema_text(msg_type) if schema is None else schema
                type_hash = codec.type_hash(msg_type) if type_hash is None else type_hash
            if msg_type not in self._schemas:
                self._schemas[msg_type] = (len(self._schemas) + 1, schema.encode())
                self._file.add_schema(self._schemas[msg_type][0], msg_type, self._schemas[msg_type][1])
            t = _Topic(
                topic,
                msg_type,
                self._schemas[msg_type][0],
                len(self._topics) + 1,
                qos if qos is not None else offered_qos_yaml(latched=latched),
                type_hash,
            )
            self._topics[topic] = t
            self._file.add_channel(t.channel_id, t.schema_id, topic, self._channel_metadata(t))

    def write(
        self,
        topic: str,
        data: bytes | bytearray | memoryview,
        log_time: int,
        *,
        publish_time: int | None = None,
        sequence: int = 0,
    ) -> None:
        """Record one serialized message.

        Args:
            topic: a topic declared with `add_topic`.
            data: the CDR bytes (with their 4-byte encapsulation header), any buffer.
            log_time: receive time, ns since the epoch (drives playback and seeking).
            publish_time: send time in ns; defaults to `log_time`.
            sequence: the publisher's sequence number (stored modulo 2**32; 0: unknown).
        """
        with self._lock:
            self._check_open()
            t = self._topics.get(topic)
            if t is None:
                raise BagError(f"topic {topic} was not added to the bag; call add_topic first")
            if not 0 <= log_time < 1 << 64:
                raise BagError(f"log time {log_time} is not a uint64 nanosecond timestamp")
            if self._should_split(log_time):
                self._file.close(self._fsync)
                self._open_next_file()
            self._file.write(t.channel_id, data, log_time, log_time if publish_time is None else publish_time, sequence)
            t.count += 1
            stats = self._files[-1]
            if stats.count == 0:
                stats.start = stats.end = log_time
            else:
                stats.start = min(stats.start, log_time)
                stats.end = max(stats.end, log_time)
            stats.count += 1

    def split(self) -> Path:
        """Close the current file and start the next one now (folder bags); returns the new file."""
        with self._lock:
            self._check_open()
            if self._bare:
                raise BagError(f"{self.path}: a bare .mcap file cannot be split")
            self._file.close(self._fsync)
            self._open_next_file()
            return self._file.path

    def flush(self) -> None:
        """Write the chunk in progress, so a crash from now on loses none of it."""
        with self._lock:
            if not self._closed:
                self._file.finish_chunk()

    def close(self) -> Path:
        """Finish the file(s) and metadata.yaml; returns the bag path. Safe to call twice."""
        with self._lock:
            if self._closed:
                return self.path
            self._closed = True
            self._file.close(self._fsync)
            if not self._bare:
                write_metadata(self.path, self.metadata_yaml())
            return self.path

    def metadata_yaml(self) -> str:
        """The metadata.yaml text for what has been written so far."""
        topics = [TopicEntry(t.name, t.type, t.qos, t.type_hash, t.count) for t in self._topics.values()]
        files = [FileEntry(f.path.name, f.start, f.end - f.start, f.count) for f in self._files]
        return metadata_yaml(topics, files, custom={"rollout_version": __version__, **self._custom})

    def _check_open(self) -> None:
        if self._closed:
            raise BagError(f"bag {self.path} is already closed")

    @property
    def files(self) -> list[Path]:
        """The MCAP files written so far, in order."""
        return [f.path for f in self._files]

    @property
    def counts(self) -> dict[str, int]:
        """Messages written per topic."""
        return {t.name: t.count for t in self._topics.values()}

    @property
    def bytes_written(self) -> int:
        """Bytes written to disk (chunks in progress not included), over all files."""
        return sum(f.path.stat().st_size for f in self._files[:-1]) + self._file.size

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
