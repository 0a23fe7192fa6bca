"""Progress of a recording: step / total, steps/s, ETA and bag size, at most once a second."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

from rollout.launching.runner import Launcher
from rollout.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_at_most_once_a_second_with_rate_eta_and_size() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress(1000, stream=out, clock=clock, size=lambda: 3 * 1024 * 1024)
    for step in range(1, 501):  # 500 steps over 5 s: 100 steps/s
        clock.t += 0.01
        progress.update(step)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4, lines  # at 1, 2, 3 and 4 s after the first step
    assert lines[-1].startswith("step 401/1000 (40%)")
    rate = float(re.search(r"([\d,]+) steps/s", lines[-1]).group(1).replace(",", ""))
    assert 95 <= rate <= 105
    assert "ETA 0:00:06" in lines[-1]  # 599 steps left at 100 steps/s
    assert "bag 3.0 MiB" in lines[-1]


def test_unknown_total_shows_no_eta() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress(None, stream=out, clock=clock)
    for step in range(1, 300):
        clock.t += 0.01
        progress.update(step)
    assert "ETA" not in out.getvalue() and re.search(r"^step \d+  \d+ steps/s$", out.getvalue(), re.M)


def test_on_a_terminal_one_line_updates_in_place() -> None:
    clock, out = Clock(), Terminal()
    progress = Progress(100, stream=out, clock=clock)
    for step in range(1, 100):
        clock.t += 0.05
        progress.update(step)
    progress.finish()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, ended once
    assert text.count("\r") >= 3 and "\x1b[K" in text


def test_launcher_redraws_progress_below_other_lines_on_a_terminal() -> None:
    out = Terminal()
    launcher = Launcher([], out=out)
    launcher.say("recorder", "step 1/10 (10%)  5 steps/s")
    launcher.say("sim", "hello")
    launcher.say("recorder", "step 2/10 (20%)  5 steps/s")
    launcher._end_progress()
    assert out.getvalue() == (
        "\r[recorder] step 1/10 (10%)  5 steps/s\x1b[K"
        "\r\x1b[K[sim] hello\n[recorder] step 1/10 (10%)  5 steps/s"
        "\r[recorder] step 2/10 (20%)  5 steps/s\x1b[K\n"
    )


def test_a_launched_recording_logs_progress_lines(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "rollout.cli", "launch", "record.launch.py", "env:=synthetic", "num_envs:=4",
         "steps:=200", "realtime:=true", f"out:={tmp_path / 'bag'}"],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    lines = re.findall(r"^\[recorder\] step (\d+)/200 \(\d+%\)  [\d,]+ steps/s  ETA \d:\d\d:\d\d  bag [\d.]+ \w+$", p.stdout, re.M)
    assert 1 <= len(lines) <= 5, p.stdout  # 200 steps at 66.7 Hz: 3 s, one line a second
    assert [int(n) for n in lines] == sorted(int(n) for n in lines)
