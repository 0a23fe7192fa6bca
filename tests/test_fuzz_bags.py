"""Corrupted and crafted bags through `bag info`, `to_npz` and replay: every one ends in the
right output or one clean error line; no traceback, no hang, no silent wrong output, and memory
stays under a cap (seeded; a few seconds)."""

from __future__ import annotations

import os
from pathlib import Path

from fuzzing import PEAK_CAP, failures, run_suite, table


def test_fuzzed_bags_end_cleanly(tmp_path: Path) -> None:
    out = run_suite("bags", seed=int(os.environ.get("ROLLOUT_FUZZ_SEED", "15")), work=tmp_path)
    print("\n" + table(out["results"], out["peak_rss"]))
    assert not failures(out["results"]), "\n".join(failures(out["results"]))
    assert out["peak_rss"] < PEAK_CAP
    outcomes = {r["outcome"] for r in out["results"]}
    assert {"same", "error"} <= outcomes  # both kinds happened: the suite really reached the code
