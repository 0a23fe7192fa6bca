"""Write an .npz member by member, streaming large arrays from an iterator of rows.

`np.savez` needs every array in memory at once; `NpzWriter.stream` writes an [T, ...] array
row by row, so converting a bag holds one message at a time instead of the whole output. The
file is what `np.savez` / `np.savez_compressed` write (a zip of `.npy` members, zip64), written
to `<name>.partial` and renamed into place on success.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import numpy as np

from rollout.errors import BagError


class NpzWriter:
    """An .npz being written; use as a context manager (an error leaves no output file)."""

    def __init__(self, path: str | os.PathLike[str], *, compressed: bool = False) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".partial")
        mode = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
        try:
            self._zip = zipfile.ZipFile(self._tmp, "w", compression=mode, allowZip64=True)
        except OSError as e:
            raise BagError(f"cannot write {self.path}: {e.strerror or e}") from None
        self.keys: list[str] = []

    def add(self, name: str, array: np.ndarray) -> None:
        """Write a whole array (object arrays are pickled, as np.savez does)."""
        with self._zip.open(name + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=True)
        self.keys.append(name)

    def stream(self, name: str, shape: tuple[int, ...], dtype: np.dtype, rows: Iterable[np.ndarray]) -> None:
        """Write an array of `shape` given as `shape[0]` rows, each with the rest of the shape's values."""
        dtype = np.dtype(dtype)
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
        written = 0
        with self._zip.open(name + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_2_0(f, header) if _big_header(header) else np.lib.format.write_array_header_1_0(f, header)
            for row in rows:
                a = np.ascontiguousarray(row, dtype=dtype)
                if a.nbytes != row_bytes:
                    raise BagError(f"{name}: a row has {a.size} values, expected {row_bytes // dtype.itemsize}")
                f.write(memoryview(a).cast("B"))
                written += 1
        if written != shape[0]:
            raise BagError(f"{name}: got {written} rows, expected {shape[0]}")
        self.keys.append(name)

    def close(self, *, keep: bool = True) -> Path:
        """Finish the file and move it into place (or delete it if `keep` is False)."""
        self._zip.close()
        if keep:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
        return self.path

    def __enter__(self) -> NpzWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self.close(keep=et is None)
        except OSError as err:
            self._tmp.unlink(missing_ok=True)
            if et is None:
                raise BagError(f"cannot write {self.path}: {err.strerror or err}") from None


def _big_header(header: dict) -> bool:
    return len(repr(header)) > 60000
