"""Chunk compression as MCAP names it ("", "lz4" = LZ4 frame, "zstd"), with libmcap's level names."""

from __future__ import annotations

from typing import Literal, Sequence

from rollout.errors import BagError

Compression = Literal["none", "lz4", "zstd"]
Level = Literal["fastest", "fast", "default", "slow", "slowest"]

# the MCAP chunk `compression` string for each choice
MCAP_NAME: dict[str, str] = {"none": "", "lz4": "lz4", "zstd": "zstd"}

# libmcap's mapping of level names (zstd levels; lz4 frame levels, negative = faster)
_ZSTD_LEVEL = {"fastest": -5, "fast": -3, "default": 1, "slow": 5, "slowest": 19}
_LZ4_LEVEL = {"fastest": -16, "fast": -4, "default": 0, "slow": 0, "slowest": 0}

# libmcap keeps a chunk uncompressed when compressing it saves less than this ratio, or it is tiny
MIN_RATIO = 1.02
MIN_SIZE = 1024


class Compressor:
    """Compresses one chunk's records, given as a list of buffers (no concatenation for lz4)."""

    def __init__(self, kind: Compression, level: Level = "default") -> None:
        if kind not in MCAP_NAME:
            raise BagError(f"unknown compression {kind!r}; choose none, lz4 or zstd")
        if level not in _ZSTD_LEVEL:
            raise BagError(f"unknown compression level {level!r}; choose one of {', '.join(_ZSTD_LEVEL)}")
        self.kind = kind
        self.name = MCAP_NAME[kind]
        if kind == "zstd":
            import zstandard

            self._zstd = zstandard.ZstdCompressor(level=_ZSTD_LEVEL[level])
        elif kind == "lz4":
            import lz4.frame

            self._lz4 = lz4.frame
            self._lz4_level = _LZ4_LEVEL[level]

    def compress(self, parts: Sequence[bytes | bytearray | memoryview], size: int) -> bytes | None:
        """Compressed bytes of the concatenated `parts` (`size` bytes), or None when not worth it."""
        if self.kind == "none" or size < MIN_SIZE:
            return None
        if self.kind == "lz4":
            c = self._lz4.LZ4FrameCompressor(compression_level=self._lz4_level)
            out = [c.begin(source_size=size)]
            out += [c.compress(p) for p in parts]
            out.append(c.flush())
            data = b"".join(out)
        else:
            data = self._zstd.compress(parts[0] if len(parts) == 1 else b"".join(parts))
        return data if size >= MIN_RATIO * len(data) else None


def decompress(data: bytes | memoryview, name: str, size: int) -> bytes:
    """The records of a chunk stored with compression `name` ("", "lz4", "zstd"), `size` bytes long."""
    try:
        if name == "zstd":
            import zstandard

            out = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
        elif name == "lz4":
            import lz4.frame

            out = lz4.frame.decompress(data)
        elif name == "":
            return bytes(data)
        else:
            raise BagError(f"chunk compression {name!r} is not supported (only lz4 and zstd)")
    except BagError:
        raise
    except Exception as e:  # zstd.ZstdError, RuntimeError from lz4: both mean corrupt data
        raise BagError(f"a {name} chunk does not decompress ({e}); the file is corrupt") from None
    if len(out) != size:
        raise BagError(f"a {name} chunk decompressed to {len(out)} bytes, expected {size}; the file is corrupt")
    return out
