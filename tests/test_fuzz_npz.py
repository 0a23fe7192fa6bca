"""Corrupted and crafted NPZs through `from_npz` (and the bag it writes through replay and
`to_npz`): every one ends in the right output or one clean error line; no traceback, no hang,
no silent wrong output, no member but `info` ever unpickled, memory under a cap (seeded)."""

from __future__ import annotations

import os
from pathlib import Path

from fuzzing import PEAK_CAP, failures, run_suite, table


def test_fuzzed_npzs_end_cleanly(tmp_path: Path) -> None:
    out = run_suite("npz", seed=int(os.environ.get("ROLLOUT_FUZZ_SEED", "15")), work=tmp_path)
    print("\n" + table(out["results"], out["peak_rss"]))
    assert not failures(out["results"]), "\n".join(failures(out["results"]))
    assert out["peak_rss"] < PEAK_CAP
    assert not out["unpickled"]  # --allow-pickle reached info only: a pickle in obs never ran
    assert {"same", "error"} <= {r["outcome"] for r in out["results"]}
