"""MCAP records: opcodes, byte layouts, and the parsers the bag layer needs (the `mcap` library's
Writer writes them).

Only what rosbag2's MCAP files contain is here (no attachments written, metadata records read
and skipped). All integers are little-endian; strings are a uint32 byte length then UTF-8;
maps are a uint32 byte length then key/value pairs. Parsers take a buffer (`bytes`, `mmap`,
`memoryview`) and an offset and check every length against the buffer, so a corrupt file
ends in `RecordError`, never in a read past the end or an endless loop.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from rollout.errors import BagError

MAGIC = b"\x89MCAP0\r\n"
PROFILE = "ros2"

OP_HEADER = 0x01
OP_FOOTER = 0x02
OP_SCHEMA = 0x03
OP_CHANNEL = 0x04
OP_MESSAGE = 0x05
OP_CHUNK = 0x06
OP_MESSAGE_INDEX = 0x07
OP_CHUNK_INDEX = 0x08
OP_ATTACHMENT = 0x09
OP_ATTACHMENT_INDEX = 0x0A
OP_STATISTICS = 0x0B
OP_METADATA = 0x0C
OP_METADATA_INDEX = 0x0D
OP_SUMMARY_OFFSET = 0x0E
OP_DATA_END = 0x0F

RECORD_HEAD = struct.Struct("<BQ")  # opcode, content length
MESSAGE_HEAD = struct.Struct("<BQHIQQ")  # opcode, length, channel id, sequence, log time, publish time
CHUNK_TIMES = struct.Struct("<QQQI")  # start, end, uncompressed size, uncompressed crc
FOOTER = struct.Struct("<BQQQI")  # opcode, length (20), summary start, summary offset start, crc
FOOTER_SIZE = FOOTER.size + len(MAGIC)
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
INDEX_ENTRY = struct.Struct("<QQ")


class RecordError(BagError):
    """Bytes that are not a well-formed MCAP record where one should be."""


# ---------------------------------------------------------------- parsed records


@dataclass
class ChunkIndex:
    start: int
    end: int
    offset: int
    length: int
    message_index_offsets: dict[int, int]
    message_index_length: int
    compression: str
    compressed_size: int
    uncompressed_size: int


@dataclass
class Statistics:
    message_count: int = 0
    schema_count: int = 0
    channel_count: int = 0
    attachment_count: int = 0
    metadata_count: int = 0
    chunk_count: int = 0
    start: int = 0
    end: int = 0
    channel_message_counts: dict[int, int] = field(default_factory=dict)


# ---------------------------------------------------------------- parsers


class Cursor:
    """Reads fields from `buf[pos:end]`, checking every length."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: Any, pos: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, pos, end

    def _take(self, n: int) -> int:
        p = self.pos
        if n < 0 or p + n > self.end:
            raise RecordError(f"record field of {n} bytes runs past its record at offset {p}")
        self.pos = p + n
        return p

    def u8(self) -> int:
        return self.buf[self._take(1)]

    def u16(self) -> int:
        return U16.unpack_from(self.buf, self._take(2))[0]

    def u32(self) -> int:
        return U32.unpack_from(self.buf, self._take(4))[0]

    def u64(self) -> int:
        return U64.unpack_from(self.buf, self._take(8))[0]

    def raw(self, n: int) -> bytes:
        p = self._take(n)
        return bytes(self.buf[p : p + n])

    def string(self) -> str:
        n = self.u32()
        try:
            return self.raw(n).decode()
        except UnicodeDecodeError:
            raise RecordError(f"string at offset {self.pos - n} is not UTF-8") from None

    def str_map(self) -> dict[str, str]:
        end = self.pos + self.u32()
        if end > self.end:
            raise RecordError("map runs past its record")
        out = {}
        while self.pos < end:
            k = self.string()
            out[k] = self.string()
        return out

    def int_map(self, value: struct.Struct) -> dict[int, int]:
        n = self.u32()
        p = self._take(n)
        step = 2 + value.size
        if n % step:
            raise RecordError("malformed id map")
        return {U16.unpack_from(self.buf, q)[0]: value.unpack_from(self.buf, q + 2)[0] for q in range(p, p + n, step)}


def read_record_head(buf: Any, pos: int, limit: int) -> tuple[int, int]:
    """(opcode, content length) of the record at `pos`; the record must end by `limit`."""
    if pos + 9 > limit:
        raise RecordError(f"record header at offset {pos} runs past the end")
    op, length = RECORD_HEAD.unpack_from(buf, pos)
    if length > limit - pos - 9:
        raise RecordError(f"record at offset {pos} (opcode {op:#x}, {length} bytes) runs past the end")
    return op, length


@dataclass
class SchemaRecord:
    id: int
    name: str
    encoding: str
    data: bytes


@dataclass
class ChannelRecord:
    id: int
    schema_id: int
    topic: str
    message_encoding: str
    metadata: dict[str, str]


def parse_schema(buf: Any, pos: int, end: int) -> SchemaRecord:
    c = Cursor(buf, pos, end)
    sid, name, enc = c.u16(), c.string(), c.string()
    return SchemaRecord(sid, name, enc, c.raw(c.u32()))


def parse_channel(buf: Any, pos: int, end: int) -> ChannelRecord:
    c = Cursor(buf, pos, end)
    return ChannelRecord(c.u16(), c.u16(), c.string(), c.string(), c.str_map())


def parse_chunk_index(buf: Any, pos: int, end: int) -> ChunkIndex:
    c = Cursor(buf, pos, end)
    start, stop, offset, length = c.u64(), c.u64(), c.u64(), c.u64()
    offsets = c.int_map(U64)
    return ChunkIndex(start, stop, offset, length, offsets, c.u64(), c.string(), c.u64(), c.u64())


def parse_statistics(buf: Any, pos: int, end: int) -> Statistics:
    c = Cursor(buf, pos, end)
    return Statistics(c.u64(), c.u16(), c.u32(), c.u32(), c.u32(), c.u32(), c.u64(), c.u64(), c.int_map(U64))


@dataclass
class ChunkRecord:
    start: int
    end: int
    uncompressed_size: int
    crc: int
    compression: str
    data_offset: int  # where the (possibly compressed) records start in the buffer
    data_size: int


def parse_chunk(buf: Any, pos: int, end: int) -> ChunkRecord:
    c = Cursor(buf, pos, end)
    start, stop, usize, crc = c.u64(), c.u64(), c.u64(), c.u32()
    comp = c.string()
    size = c.u64()
    return ChunkRecord(start, stop, usize, crc, comp, c._take(size), size)
