"""A shared page in a real headless Chromium (Debian's /usr/bin/chromium through Playwright).

A real recording (MuJoCo humanoid, random actions) is exported with `rollout bag share`, copied
alone into an empty folder and opened from its file:// URL with every request that is not for
the file itself refused. The page must draw the robots (robot-coloured pixels on the canvas),
play (the step on its label and the picture move), pause on Space and jump when a time is
typed into its timeline. Skipped only when Chromium or Playwright is missing.
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest

from browser import CHROMIUM, FLAGS, sync_playwright, wait_until
from recordings import record_humanoid
from rollout.cli import main as cli

WIDTH, HEIGHT = 960, 720
SCENE = (slice(200, HEIGHT - 60), slice(0, WIDTH))  # canvas rows clear of the notice and the timeline
STEPS = 200  # 3 s of sim time: long enough to watch it move before it loops


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """The page, alone in a folder of its own."""
    bag = record_humanoid(tmp_path_factory.mktemp("bag") / "run", num_envs=4, steps=STEPS)
    out = tmp_path_factory.mktemp("page") / "run.html"
    assert cli(["bag", "share", str(bag), "-o", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def page(shared, tmp_path_factory):
    refused: list[str] = []

    def only_the_file(route) -> None:
        url = route.request.url
        if url == shared.as_uri() or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    profile = tmp_path_factory.mktemp("chromium")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": WIDTH, "height": HEIGHT}
        )
        ctx.route("**/*", only_the_file)
        pg = ctx.new_page()
        pg.refused = refused
        pg.goto(shared.as_uri())
        pg.wait_for_selector("canvas", timeout=30_000)
        wait_until(lambda: label_step(pg) is not None, timeout=20, what="the page to start playing")
        yield pg
        ctx.close()


LABEL_TEXT = """(() => {
  const node = window.__viserSceneTree?.getState()["/world/env_label"];
  return node ? node.message.props.text : null;
})()"""


def label_step(page) -> int | None:
    """The step on the label over the first env (None before the first frame). The label is drawn
    in the canvas, so its text is read from the page's scene tree (viser's test hook)."""
    text = page.evaluate(LABEL_TEXT)
    found = re.fullmatch(r"env 0 · step (\d+)", text or "")
    return int(found.group(1)) if found else None


def scene_pixels(page) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)[SCENE]


def robot_pixels(img: np.ndarray) -> int:
    """Pixels of the robots' colour (warm: red well above blue); the ground and sky are grey and white."""
    return int(((img[..., 0] - img[..., 2]) > 40).sum())


def test_page_draws_the_robots_and_plays_offline(page):
    wait_until(lambda: robot_pixels(scene_pixels(page)) > 500, timeout=20, what="robot-coloured pixels on the canvas")
    first_step, first = label_step(page), scene_pixels(page)
    wait_until(lambda: label_step(page) != first_step, timeout=10, what="the step on the label to move")
    time.sleep(0.5)
    assert np.abs(scene_pixels(page) - first).mean() > 0.05  # the picture moved too
    assert page.refused == []  # it asked for nothing beyond the one file


def test_space_pauses_and_typing_a_time_jumps_there(page):
    page.keyboard.press("Space")
    time.sleep(0.5)
    held = label_step(page)
    time.sleep(1.0)
    assert label_step(page) == held  # paused
    clock = page.locator("input").first  # the timeline's time, sim seconds from the first step
    clock.fill("1.5")
    # 1.5 s at 15 ms a step is step 100; frames are every other step
    wait_until(lambda: abs((label_step(page) or 0) - 100) <= 2, timeout=10, what="the label to show step 100")
