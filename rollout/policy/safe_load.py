"""Loading checkpoint files nobody vouched for without running code from them.

A torch.save file is a pickle, and unpickling runs whatever code its author chose. Loads here are
restricted to tensors and plain containers: `torch.load(weights_only=True)` after refusing files
that name other globals, and `torch.export.load` with each of its unpickling paths forced
weights-only.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

from rollout.errors import PolicyError
from rollout.policy.base import first_line
from rollout.policy.formats import is_zip

def load_export_weights_only(path: Path) -> Any:
    """`torch.export.load`, with every unpickling it would do restricted to tensors.

    A .pt2 keeps its graph as JSON and its weights as raw bytes, but `torch.export.load` still
    unpickles some payloads with `weights_only=False` (pickled weights and constants, custom
    objects, and sample inputs when a weights-only load fails). Those would run code from an
    untrusted file, so while it loads, `torch.load` is forced to `weights_only=True` and plain
    unpickling is refused.
    """
    import torch

    try:
        import torch.export.pt2_archive._package as package
    except ImportError:
        package = None
    if package is None or not hasattr(package, "pickle") or not hasattr(torch._C, "_pickle_load_obj"):
        # fail closed: without both hooks an untrusted .pt2 could unpickle code
        raise PolicyError(
            f"cannot load {path} safely with torch {torch.__version__} (tested with 2.13); "
            "use that torch version or a state_dict checkpoint with its JSON config"
        )
    real_load = torch.load

    def weights_only_load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return real_load(*args, **kwargs)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PolicyError(f"policy checkpoint {path} holds pickled Python objects; refusing to unpickle them")

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(torch, "load", weights_only_load))
        stack.enter_context(mock.patch.object(package, "pickle", SimpleNamespace(loads=refuse, load=refuse)))
        stack.enter_context(mock.patch.object(torch._C, "_pickle_load_obj", refuse))
        return torch.export.load(str(path))


def load_weights_only(path: Path) -> Any:
    """`torch.load` of a state_dict-style file, refusing any file that pickles other objects."""
    import torch

    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if is_zip(path) else []
    if unsafe:
        raise PolicyError(
            f"policy checkpoint {path} is a pickled Python object ({unsafe[0]}), not weights; refusing to "
            "unpickle it (that could run any code). Save it with rollout.policy.export_policy (.pt2) or as a "
            "state_dict with a JSON config"
        )
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise PolicyError(f"cannot load policy checkpoint {path} safely: {first_line(e)}") from None
