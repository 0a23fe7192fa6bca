"""Two recordings aligned by control step: which State of B goes with the State of A just played.

    align = StepAlign(bag_a, bag_b)
    i = align.b_index(log_time_of_a_state)   # B's State message index, or None

Indices only (no decoding): A's log times and steps, B's steps, read once from the bags' indexes.
A step B did not record (B ended earlier, or has a gap) shows B's last state before it.
"""

from __future__ import annotations

import numpy as np

from rollout import topics as T
from rollout.bag import Bag


class StepAlign:
    """B's State at A's step."""

    def __init__(self, a: Bag, b: Bag) -> None:
        self._a_times = a.log_times(T.STATE)
        self._a_steps = a.steps(T.STATE)
        self._b_steps = b.steps(T.STATE)

    def step_of(self, log_time: int) -> int | None:
        """A's step of its State logged at `log_time` (the last one at or before it)."""
        i = int(np.searchsorted(self._a_times, log_time, "right")) - 1
        return int(self._a_steps[i]) if i >= 0 else None

    def b_index(self, log_time: int) -> int | None:
        """Index of B's State at A's step (of the State at `log_time`), or B's last before it;
        None before B's first step."""
        step = self.step_of(log_time)
        if step is None:
            return None
        j = int(np.searchsorted(self._b_steps, step, "right")) - 1
        return j if j >= 0 else None
