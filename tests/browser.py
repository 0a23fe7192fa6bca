"""What the real-browser tests share: Debian's Chromium through Playwright, started as this
machine needs (no sandbox as root, no GPU, no background traffic to a network that refuses it),
and a wait that fails the test with what it waited for. Importing it skips the test module
where Chromium or Playwright is missing."""

from __future__ import annotations

import shutil
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
