"""Several array properties of one viser scene node sent as one update message.

    send_arrays(handle, batched_positions=p, batched_wxyzs=q)   # one message, not two

Assigning `handle.batched_positions = p` costs viser a dtype cast, an equality check, an in-place
copy into the stored props, a copy for the wire and one message per property: at 1,024 envs x 24
bodies that per-property handling was most of a frame. Here the caller hands over float32 arrays
it will not write again (fresh each frame), so the props keep them and the message carries them
as they are; a property whose value did not change is left out, and nothing is sent when none
did. The stored props stay what viser would have stored, so a page that connects later gets the
same scene. A handle without viser's internals (another viser version) gets plain assignments.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def send_arrays(handle: Any, **arrays: np.ndarray) -> int:
    """Set `arrays` (float32, same dtype as the node's props, not written by the caller
    afterwards) on the scene node `handle`; returns how many of them changed."""
    impl = getattr(handle, "_impl", None)
    props, api = getattr(impl, "props", None), getattr(impl, "api", None)
    queue = getattr(api, "_queue_scene_message", None)
    if queue is None:  # not the viser this was written against: its public setters
        for name, value in arrays.items():
            setattr(handle, name, value)
        return len(arrays)
    if impl.removed:
        return 0
    from viser import _messages

    changed = {}
    for name, value in arrays.items():
        old = getattr(props, name)
        if isinstance(old, np.ndarray) and old.shape == value.shape and np.array_equal(old, value):
            continue
        setattr(props, name, value)
        changed[name] = value
    if changed:
        queue(_messages.SceneNodeUpdateMessage(impl.name, changed))
    return len(changed)
