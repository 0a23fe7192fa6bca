"""What the real-browser tests share: Debian's Chromium through Playwright, started as this
machine needs (no sandbox as root, no GPU, no background traffic to a network that refuses it),
a wait that fails the test with what it waited for, and a `rollout launch` whose output the test
reads as it comes. Importing it skips the test module where Chromium or Playwright is missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-swiftshader",
]

if shutil.which(CHROMIUM) is None:
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_playwright = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
).sync_playwright


def wait_until(cond: Callable[[], object], timeout: float = 15.0, what: str = "condition", poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(poll)


def launch(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`rollout launch ARGS` in its own process, and the list its output lines are added to."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rollout.cli", "launch", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    return proc, lines
