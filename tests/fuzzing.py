"""Runs a fuzz suite (tests/fuzz_worker.py) in its own capped process and tabulates the outcomes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

WORKER = Path(__file__).with_name("fuzz_worker.py")
PEAK_CAP = 1536 << 20  # resident memory the whole suite may reach (the worker's address space is capped at 3 GiB)


def run_suite(suite: str, seed: int, work: Path, timeout: float = 150) -> dict:
    result = work / "result.json"
    p = subprocess.run([sys.executable, str(WORKER), suite, str(seed), str(work), str(result)],
                       capture_output=True, text=True, timeout=timeout, env=dict(os.environ))  # fmt: skip
    current = (work / "current").read_text() if (work / "current").exists() else "?"
    assert p.returncode == 0, f"the fuzz worker died on {current}: {p.stderr[-3000:]}"
    return json.loads(result.read_text())


def table(results: list[dict], peak_rss: int) -> str:
    """A markdown table: per target, inputs tried and how each ended."""
    rows = ["| target | inputs | same output as the intact input | described, with a warning | clean one-line errors "
            "| tracebacks | hangs | silent wrong outputs |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    by: dict[str, Counter] = {}
    for r in results:
        by.setdefault(r["target"], Counter())[r["outcome"]] += 1
    for target, c in by.items():
        rows.append(f"| {target} | {sum(c.values())} | {c['same']} | {c['warned']} | {c['error']} | {c['traceback']} "
                    f"| {c['hang']} | {c['wrong']} |")  # fmt: skip
    rows.append(f"\npeak resident memory of the fuzz process: {peak_rss / 2**20:.0f} MiB")
    return "\n".join(rows)


def failures(results: list[dict]) -> list[str]:
    return [f"{r['target']} / {r['input']}: {r['outcome']} {r['detail']}" for r in results
            if r["outcome"] in ("traceback", "hang", "wrong")]  # fmt: skip
