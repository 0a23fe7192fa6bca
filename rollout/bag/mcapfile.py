"""One MCAP file opened for reading: memory-mapped, its summary parsed, its chunks reachable by index.

`McapFile` reads only what it is asked for: the summary at open; a channel's message index
records when that channel is first read; a chunk when one of its messages is. Uncompressed
chunks are never copied (messages are `memoryview`s into the mapping); compressed ones are
decompressed once and kept in a small cache. A file cut short (a killed recorder) has no
summary: `McapFile(path, scan=True)` rebuilds the index by walking the complete chunks, which
is also what `repair` and `check` do (`rescan=True` walks even when the summary is fine).

Chunk CRCs are checked the first time a chunk is read, the summary's CRC when the file is
opened; a chunk that fails is named by its topics and log-time range. A walk skips a bad chunk
and finds the next good one even when the bad one's length field is what broke.
"""

from __future__ import annotations

import mmap
import os
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rollout.bag import records as rec
from rollout.bag.compression import decompress
from rollout.errors import BagError

_CACHE_CHUNKS = 4


def _identify(head: bytes) -> str:
    """What a file that is not MCAP looks like it is, for the error message."""
    if head.startswith(b"#ROSBAG"):
        return "a ROS 1 bag"
    if head.startswith(b"SQLite format 3"):
        return "a rosbag2 sqlite3 file (only MCAP bags are supported)"
    if head.startswith(b"PK\x03\x04"):
        return "a zip/npz file"
    if not head:
        return "empty"
    return f"not an MCAP file (it starts with {head[:8]!r})"


@dataclass
class Chunk:
    """Where one chunk is and what it holds (from a ChunkIndex record or a scan)."""

    offset: int  # file offset of the chunk record
    length: int  # whole record, head included
    start: int
    end: int
    compression: str
    uncompressed_size: int
    message_index_offsets: dict[int, int]
    message_index_length: int


@dataclass
class ChannelIndex:
    """Every message of one channel in one file: log times, chunk numbers, offsets in the chunk."""

    log_time: np.ndarray  # int64
    chunk: np.ndarray  # int32; -1 for a message outside chunks (offset is then a file offset)
    offset: np.ndarray  # int64


@dataclass
class BadRange:
    """Bytes a walk had to skip: a chunk that fails its checks, or garbage between records."""

    offset: int
    length: int
    reason: str
    start: int = 0  # log-time range the chunk header claims (0, 0: unknown)
    end: int = 0
    topics: tuple[str, ...] = ()  # from the summary's chunk index, where it could be read

    def describe(self, origin: int = 0) -> str:
        """One line: where, which topics, which times, why."""
        what = "chunk" if self.start or self.end else "data"
        details = [f"{self.length} bytes"]
        if self.topics:
            details.append(", ".join(self.topics))
        if self.start or self.end:
            lo, hi = (self.start - origin) / 1e9, (self.end - origin) / 1e9
            details.append(f"log time {lo:.3f}..{hi:.3f} s into the bag" if origin else f"log time {self.start}..{self.end} ns")
        return f"{what} at offset {self.offset} ({'; '.join(details)}) {self.reason}"


@dataclass
class ScanResult:
    """What a linear walk over a (possibly truncated or damaged) file found."""

    complete: bool  # the file ends in a valid footer
    chunks_ok: int = 0
    chunks_bad: int = 0
    end_of_data: int = 0  # file offset after the last good record
    problems: list[str] = field(default_factory=list)
    bad: list[BadRange] = field(default_factory=list)
    summary_problem: str = ""  # why the summary could not be used, when it was there but broken


class McapFile:
    """A memory-mapped MCAP file with a `ros2` profile."""

    def __init__(self, path: str | os.PathLike[str], *, scan: bool = False, rescan: bool = False) -> None:
        """Open `path`.

        Args:
            scan: if the file has no usable summary (cut short by a crash, or damaged), rebuild
                the index by walking its complete chunks instead of raising.
            rescan: walk every chunk even when the summary is fine (checks and repairs).
        """
        self.path = Path(path)
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise BagError(f"{self.path} does not exist") from None
        except IsADirectoryError:
            raise BagError(f"{self.path} is a folder, not an MCAP file") from None
        except OSError as e:
            raise BagError(f"cannot open {self.path}: {e.strerror}") from None
        try:
            self.size = os.fstat(fd).st_size
            head = os.pread(fd, 16, 0)
            if not head.startswith(rec.MAGIC):
                raise BagError(f"{self.path} is {_identify(head)}")
            self._mm = mmap.mmap(fd, self.size, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        self.buf = memoryview(self._mm)
        self.profile = ""
        self.library = ""
        self.schemas: dict[int, rec.SchemaRecord] = {}
        self.channels: dict[int, rec.ChannelRecord] = {}
        self.stats: rec.Statistics | None = None
        self.chunks: list[Chunk] = []
        self.scan_result: ScanResult | None = None
        self._scanned: dict[int, ChannelIndex] | None = None
        self._indexes: dict[int, ChannelIndex] = {}
        self._cache: OrderedDict[int, memoryview] = OrderedDict()  # decompressed chunks, a few
        self._plain: dict[int, memoryview] = {}  # views of uncompressed chunks, all (they cost nothing)
        self.summary_topics: dict[int, tuple[str, ...]] = {}  # chunk offset -> its topics, per the summary
        try:
            self._read_header()
            summary_problem = ""
            try:
                have_summary = self._read_summary()
            except rec.RecordError as e:
                if not (scan or rescan):
                    raise BagError(
                        f"{self.path} is corrupt: {e}; `rollout bag check {self.path}` lists the damage, "
                        f"`rollout bag repair {self.path}` rebuilds the index from the chunks"
                    ) from None
                summary_problem, have_summary = str(e), False
            if have_summary:
                self.summary_topics = {
                    ch.offset: tuple(sorted(self.channels[c].topic for c in ch.message_index_offsets if c in self.channels))
                    for ch in self.chunks
                }
            if not have_summary or rescan:
                if not (scan or rescan) and not self._footer_ok():
                    raise BagError(
                        f"{self.path} is truncated (the recording did not finish: no footer); "
                        f"recover its complete chunks with `rollout bag repair {self.path}`"
                    )
                self.schemas, self.channels, self.stats, self.chunks = {}, {}, None, []
                self.scan_result = self._scan()
                self.scan_result.summary_problem = summary_problem
        except rec.RecordError as e:
            self.close()
            raise BagError(f"{self.path} is corrupt: {e}") from None
        except BaseException:
            self.close()
            raise

    # -- opening

    def _read_header(self) -> None:
        op, length = rec.read_record_head(self.buf, 8, self.size)
        if op != rec.OP_HEADER:
            raise rec.RecordError(f"the first record is opcode {op:#x}, not a header")
        c = rec.Cursor(self.buf, 17, 17 + length)
        self.profile, self.library = c.string(), c.string()
        if self.profile != rec.PROFILE:
            raise BagError(
                f"{self.path} is an MCAP file with profile {self.profile!r}, not a ROS 2 bag (profile 'ros2')"
            )

    def _footer_ok(self) -> bool:
        n = self.size
        if n < 8 + rec.FOOTER_SIZE or bytes(self.buf[n - 8 :]) != rec.MAGIC:
            return False
        return self.buf[n - rec.FOOTER_SIZE] == rec.OP_FOOTER

    def _read_summary(self) -> bool:
        """Parse the summary section; False when there is none to use (then the file needs a scan)."""
        if not self._footer_ok():
            return False
        n = self.size
        op, length, summary_start, offsets_start, crc = rec.FOOTER.unpack_from(self.buf, n - rec.FOOTER_SIZE)
        footer_at = n - rec.FOOTER_SIZE
        if summary_start == 0:
            return False  # valid, but written without a summary
        if not 8 < summary_start <= footer_at:
            raise rec.RecordError(f"footer points at a summary outside the file ({summary_start})")
        if crc:
            actual = zlib.crc32(self.buf[footer_at : footer_at + 25], zlib.crc32(self.buf[summary_start:footer_at]))
            if actual != crc:
                raise rec.RecordError("the summary section fails its CRC check")
        pos = summary_start
        while pos < footer_at:
            op, length = rec.read_record_head(self.buf, pos, footer_at)
            body, end = pos + 9, pos + 9 + length
            if op == rec.OP_SCHEMA:
                s = rec.parse_schema(self.buf, body, end)
                self.schemas[s.id] = s
            elif op == rec.OP_CHANNEL:
                ch = rec.parse_channel(self.buf, body, end)
                self.channels[ch.id] = ch
            elif op == rec.OP_STATISTICS:
                self.stats = rec.parse_statistics(self.buf, body, end)
            elif op == rec.OP_CHUNK_INDEX:
                ci = rec.parse_chunk_index(self.buf, body, end)
                if ci.offset + ci.length > footer_at:
                    raise rec.RecordError(f"a chunk index points outside the data section ({ci.offset})")
                self.chunks.append(
                    Chunk(
                        ci.offset,
                        ci.length,
                        ci.start,
                        ci.end,
                        ci.compression,
                        ci.uncompressed_size,
                        ci.message_index_offsets,
                        ci.message_index_length,
                    )
                )
            pos = end
        if self.stats is not None and self.stats.message_count and not self.chunks:
            return False  # unchunked file: messages sit in the data section, find them by scanning
        if self.stats is None:  # no Statistics record: count from the message indexes
            counts = {cid: int(self.channel_index(cid).log_time.size) for cid in self.channels}
            times = [self.channel_index(cid).log_time for cid in self.channels]
            t = np.concatenate(times) if times else np.zeros(0, np.int64)
            self.stats = rec.Statistics(
                message_count=sum(counts.values()),
                chunk_count=len(self.chunks),
                start=int(t.min()) if t.size else 0,
                end=int(t.max()) if t.size else 0,
                channel_message_counts=counts,
            )
        return True

    # -- scanning

    def _scan(self) -> ScanResult:
        """Walk the data section record by record, keeping every complete, valid chunk."""
        result = ScanResult(complete=self._footer_ok())
        entries: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        buf, size = self.buf, self.size
        _, length = rec.read_record_head(buf, 8, size)
        pos = 17 + length
        result.end_of_data = pos
        chunks: list[Chunk] = []
        while pos < size:
            try:
                op, length = rec.read_record_head(buf, pos, size)
                if not rec.OP_HEADER <= op <= rec.OP_DATA_END:
                    raise rec.RecordError(f"opcode {op:#x} at offset {pos} is not an MCAP record")
            except rec.RecordError as e:
                nxt = self._next_chunk(pos + 1)
                if nxt is None:
                    if self._footer_ok() and size - pos > rec.FOOTER_SIZE:
                        result.bad.append(BadRange(pos, size - pos, str(e)))
                    result.problems.append(f"the file ends inside a record at offset {pos} (truncated)")
                    break
                result.bad.append(BadRange(pos, nxt - pos, f"unreadable ({e})"))
                result.problems.append(f"skipped {nxt - pos} unreadable bytes at offset {pos}")
                pos = nxt
                continue
            body, end = pos + 9, pos + 9 + length
            if op in (rec.OP_DATA_END, rec.OP_FOOTER):
                result.end_of_data = pos
                break
            try:
                if op == rec.OP_SCHEMA:
                    s = rec.parse_schema(buf, body, end)
                    self.schemas[s.id] = s
                elif op == rec.OP_CHANNEL:
                    ch = rec.parse_channel(buf, body, end)
                    self.channels[ch.id] = ch
                elif op == rec.OP_MESSAGE:
                    if length < 22:
                        raise rec.RecordError("message record too short")
                    channel_id = rec.U16.unpack_from(buf, body)[0]
                    log_time = rec.U64.unpack_from(buf, body + 6)[0]
                    entries.setdefault(channel_id, []).append(
                        (np.array([log_time], np.int64), np.array([-1], np.int32), np.array([pos], np.int64))
                    )
                elif op == rec.OP_CHUNK:
                    number = len(chunks)
                    c = rec.parse_chunk(buf, body, end)
                    try:
                        found = self._scan_chunk(pos, end, number)
                    except (rec.RecordError, BagError) as e:
                        reason = str(e)
                        result.chunks_bad += 1
                        result.bad.append(BadRange(pos, end - pos, reason, c.start, c.end, self.summary_topics.get(pos, ())))
                        result.problems.append(f"chunk at offset {pos} is unreadable: {reason}")
                        chunks.append(Chunk(pos, end - pos, 0, 0, "", 0, {}, 0))  # keep numbering; never read
                        pos = end
                        continue
                    chunks.append(Chunk(pos, end - pos, c.start, c.end, c.compression, c.uncompressed_size, {}, 0))
                    for channel_id, triple in found.items():
                        entries.setdefault(channel_id, []).append(triple)
                    result.chunks_ok += 1
            except (rec.RecordError, BagError) as e:
                if op == rec.OP_CHUNK:
                    result.chunks_bad += 1
                result.bad.append(BadRange(pos, end - pos, str(e)))
                result.problems.append(f"record at offset {pos} (opcode {op:#x}) is unreadable: {e}")
            pos = end
            result.end_of_data = pos
        self.chunks = chunks
        self._cache.clear()
        self._plain.clear()
        self._scanned = {
            cid: ChannelIndex(*(np.concatenate([t[k] for t in lst]) for k in range(3))) for cid, lst in entries.items()
        }
        counts = {cid: int(ix.log_time.size) for cid, ix in self._scanned.items()}
        times = [ix.log_time for ix in self._scanned.values() if ix.log_time.size]
        all_times = np.concatenate(times) if times else np.zeros(0, np.int64)
        self.stats = rec.Statistics(
            message_count=sum(counts.values()),
            schema_count=len(self.schemas),
            channel_count=len(self.channels),
            chunk_count=result.chunks_ok,
            start=int(all_times.min()) if all_times.size else 0,
            end=int(all_times.max()) if all_times.size else 0,
            channel_message_counts=counts,
        )
        return result

    def _next_chunk(self, start: int) -> int | None:
        """Offset of the next record after `start` that looks like a whole chunk (a corrupt length
        field hides where the next record begins; this finds it again), or None."""
        buf, size = self._mm, self.size
        pos = start
        while True:
            pos = buf.find(b"\x06", pos)
            if pos < 0 or pos + 9 + rec.CHUNK_TIMES.size > size:
                return None
            try:
                _, length = rec.read_record_head(self.buf, pos, size)
                c = rec.parse_chunk(self.buf, pos + 9, pos + 9 + length)
                after = pos + 9 + length
                plausible = c.compression in ("", "lz4", "zstd") and c.start <= c.end
                plausible = plausible and (after == size or rec.OP_HEADER <= self.buf[after] <= rec.OP_DATA_END)
                if plausible and (c.compression or c.uncompressed_size == c.data_size):
                    return pos
            except rec.RecordError:
                pass
            pos += 1

    def _scan_chunk(self, pos: int, end: int, number: int) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Messages of the chunk record at `pos` by channel; also picks up schemas and channels in it."""
        c = rec.parse_chunk(self.buf, pos + 9, end)
        records = self._records(c, number, check_crc=True)
        found: dict[int, list[tuple[int, int]]] = {}
        p, n = 0, len(records)
        while p < n:
            op, length = rec.read_record_head(records, p, n)
            body, rend = p + 9, p + 9 + length
            if op == rec.OP_MESSAGE:
                if length < 22:
                    raise rec.RecordError("message record too short")
                channel_id = rec.U16.unpack_from(records, body)[0]
                log_time = rec.U64.unpack_from(records, body + 6)[0]
                found.setdefault(channel_id, []).append((log_time, p))
            elif op == rec.OP_SCHEMA:
                s = rec.parse_schema(records, body, rend)
                self.schemas[s.id] = s
            elif op == rec.OP_CHANNEL:
                ch = rec.parse_channel(records, body, rend)
                self.channels[ch.id] = ch
            p = rend
        out = {}
        for cid, lst in found.items():
            a = np.array(lst, dtype=np.int64).reshape(-1, 2)
            out[cid] = (a[:, 0].copy(), np.full(len(lst), number, np.int32), a[:, 1].copy())
        return out

    # -- chunks and messages

    def _records(self, c: rec.ChunkRecord, number: int, *, check_crc: bool = False) -> memoryview:
        if c.compression == "":
            if c.data_size != c.uncompressed_size:
                raise rec.RecordError("uncompressed chunk whose sizes disagree")
            data = self.buf[c.data_offset : c.data_offset + c.data_size]
        else:
            data = memoryview(decompress(self.buf[c.data_offset : c.data_offset + c.data_size], c.compression, c.uncompressed_size))
        if check_crc and c.crc and zlib.crc32(data) != c.crc:
            raise rec.RecordError("chunk fails its CRC check")
        return data

    def chunk_records(self, number: int) -> memoryview:
        """The uncompressed records of chunk `number` (a view into the file when stored uncompressed)."""
        plain = self._plain.get(number)
        if plain is not None:
            return plain
        cached = self._cache.get(number)
        if cached is not None:
            self._cache.move_to_end(number)
            return cached
        ch = self.chunks[number]
        try:
            c = rec.parse_chunk(self.buf, ch.offset + 9, ch.offset + ch.length)
            data = self._records(c, number, check_crc=True)  # once per chunk: views are kept
        except (rec.RecordError, BagError) as e:
            reason = str(e)
            bad = BadRange(ch.offset, ch.length, reason, ch.start, ch.end, self.summary_topics.get(ch.offset, ()))
            origin = self.stats.start if self.stats else 0
            raise BagError(
                f"{self.path} is corrupt: {bad.describe(origin)}; `rollout bag check` lists every bad chunk, "
                "`rollout bag repair` keeps the rest"
            ) from None
        if c.compression:
            self._cache[number] = data
            if len(self._cache) > _CACHE_CHUNKS:
                self._cache.popitem(last=False)
        else:
            self._plain[number] = data
        return data

    def release(self, number: int) -> None:
        """Unmap the pages of chunk `number` from this process (they stay in the page cache and
        come back on the next access), so reading a big bag does not grow the resident size."""
        if number < 0 or number >= len(self.chunks) or self._mm.closed:
            return
        ch = self.chunks[number]
        start = ch.offset - ch.offset % mmap.PAGESIZE
        end = ch.offset + ch.length
        end -= end % mmap.PAGESIZE  # keep the page shared with the next record
        if end > start:
            self._mm.madvise(mmap.MADV_DONTNEED, start, end - start)

    def message(self, chunk: int, offset: int) -> tuple[int, int, int, int, memoryview]:
        """(channel id, sequence, log time, publish time, data) of the message record at `offset`
        in chunk `chunk` (or at file offset `offset` when `chunk` is -1)."""
        buf = self.buf if chunk < 0 else self.chunk_records(chunk)
        n = len(buf)
        if offset + rec.MESSAGE_HEAD.size > n:
            raise BagError(f"{self.path}: a message index points past its chunk; the file is corrupt")
        op, length, channel_id, seq, log_time, pub = rec.MESSAGE_HEAD.unpack_from(buf, offset)
        end = offset + 9 + length
        if op != rec.OP_MESSAGE or length < 22 or end > n:
            raise BagError(f"{self.path}: a message index points at something that is not a message; the file is corrupt")
        return channel_id, seq, log_time, pub, buf[offset + rec.MESSAGE_HEAD.size : end]

    def channel_index(self, channel_id: int) -> ChannelIndex:
        """Every message of `channel_id`, in file order, from the message index records."""
        ix = self._indexes.get(channel_id)
        if ix is not None:
            return ix
        if self._scanned is not None:
            ix = self._scanned.get(channel_id, ChannelIndex(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64)))
        else:
            parts_t, parts_c, parts_o = [], [], []
            for number, ch in enumerate(self.chunks):
                if ch.message_index_length == 0 and ch.message_index_offsets == {}:
                    found = self._scan_chunk(ch.offset, ch.offset + ch.length, number).get(channel_id)
                    if found is not None:
                        parts_t.append(found[0])
                        parts_c.append(found[1])
                        parts_o.append(found[2])
                    continue
                at = ch.message_index_offsets.get(channel_id)
                if at is None:
                    continue
                try:
                    op, length = rec.read_record_head(self.buf, at, self.size)
                    c = rec.Cursor(self.buf, at + 9, at + 9 + length)
                    if op != rec.OP_MESSAGE_INDEX or c.u16() != channel_id:
                        raise rec.RecordError("a chunk index points at something that is not this channel's message index")
                    nbytes = c.u32()
                    start = c._take(nbytes)
                except rec.RecordError as e:
                    raise BagError(f"{self.path} is corrupt: {e}") from None
                pairs = np.frombuffer(self.buf, "<i8", nbytes // 8, start).reshape(-1, 2)
                parts_t.append(pairs[:, 0].copy())  # copies: no views of the mapping outlive close()
                parts_o.append(pairs[:, 1].copy())
                parts_c.append(np.full(len(pairs), number, np.int32))
            if parts_t:
                ix = ChannelIndex(np.concatenate(parts_t), np.concatenate(parts_c), np.concatenate(parts_o))
            else:
                ix = ChannelIndex(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64))
        self._indexes[channel_id] = ix
        return ix

    def close(self) -> None:
        self._cache.clear()
        self._plain.clear()
        self._indexes.clear()
        self._scanned = None
        buf = getattr(self, "buf", None)
        if buf is not None:
            try:
                buf.release()
            except BufferError:  # views handed out are still alive; the mapping goes with them
                pass
        mm = getattr(self, "_mm", None)
        if mm is not None:
            try:
                mm.close()
            except BufferError:
                pass
