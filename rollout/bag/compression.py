"""Chunk compression as MCAP names it ("", "lz4" = LZ4 frame, "zstd"): decompressing what a
chunk holds into exactly the size its header declares, and never more (the writer compresses
through the `mcap` library)."""

from __future__ import annotations

from typing import Literal

from rollout.errors import BagError
from rollout.limits import check_allocation

Compression = Literal["none", "lz4", "zstd"]


def decompress(data: bytes | memoryview, name: str, size: int) -> bytes:
    """The records of a chunk stored with compression `name` ("", "lz4", "zstd"), `size` bytes long."""
    check_allocation(size, f"a {name or 'plain'} chunk that declares {size} bytes", BagError)
    try:
        if name == "zstd":
            import zstandard

            out = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
        elif name == "lz4":
            import lz4.frame

            out = lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=size)
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
