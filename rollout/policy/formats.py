"""Which kind of checkpoint a file is, told from its bytes; and its sha256."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Literal

from rollout.errors import PolicyError

def detect_format(path: str | Path) -> Literal["pt2", "torchscript", "pickle"]:
    """Tell a checkpoint's format from its bytes: a torch.export program, TorchScript, or a
    torch.save pickle (state_dict or, refused later, a whole module)."""
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile:
            raise PolicyError(f"policy checkpoint {path} is a damaged zip archive") from None
        if any(n.endswith("/models/model.json") or n.endswith("/archive_format") for n in names):
            return "pt2"
        if any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("/data.pkl") for n in names):
            return "pickle"
        raise PolicyError(f"policy checkpoint {path} is a zip archive but not a torch.export, TorchScript or torch.save file")
    if head[:1] == b"\x80":  # pickle protocol marker: a legacy (non-zip) torch.save file
        return "pickle"
    raise PolicyError(f"policy checkpoint {path} is not a torch checkpoint (.pt2, state_dict or TorchScript)")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_zip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"
