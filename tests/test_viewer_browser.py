"""The viewer's page in a real headless Chromium (Debian's /usr/bin/chromium through Playwright).

A Viewer is fed a real recording of the MuJoCo humanoid through the real replay `Player`
(`InProcessReplay` of test_viewer.py) while a thread plays it, as the replay node would. The page
must draw the robots (a canvas that is not blank), redraw them when the playhead moves, advance
the timeline when its Play button is clicked, and move its camera when a preset is clicked.
Skipped only when Chromium or Playwright is missing.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from browser import CHROMIUM, FLAGS, launch, sync_playwright, wait_until
from test_viewer import InProcessReplay, bag_path  # noqa: F401 -- the recording fixture
from ports import free_port

WIDTH, HEIGHT = 960, 720
SCENE = (slice(160, HEIGHT - 60), slice(0, 600))  # canvas rows/columns clear of the panel and the notice


@pytest.fixture(scope="module")
def replay(bag_path) -> Iterator[InProcessReplay]:  # noqa: F811
    opened: list[float] = []
    # paced by sim time (60 steps x 15 ms), not by how fast the recorder ran: slow enough to watch
    r = InProcessReplay(bag_path, pace="sim", page_ready=lambda: opened.append(time.monotonic()))
    r.opened = opened
    stop = threading.Event()

    def play() -> None:  # the replay node's loop: publish what is due, then the status
        while not stop.is_set():
            r.pump()
            time.sleep(0.015)

    t = threading.Thread(target=play, daemon=True)
    t.start()
    yield r
    stop.set()
    t.join()
    r.close()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (Playwright's sync API starts once per thread)."""
    profile = tempfile.mkdtemp(prefix="rollout-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": WIDTH, "height": HEIGHT}
        )
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(browser, replay):
    pg = browser.new_page()
    pg.goto(replay.viewer.url)
    pg.wait_for_selector("canvas", timeout=30_000)
    pg.get_by_role("button", name="Play").wait_for(timeout=30_000)
    wait_until(lambda: replay.viewer.server.get_clients(), what="the page to connect")
    yield pg


def scene_pixels(page) -> np.ndarray:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)
    return img[SCENE]


def shown_in_page(page) -> int:
    """The step the page's reward table says it shows."""
    text = page.get_by_text(re.compile(r"step \d+ · t =")).inner_text()
    return int(re.search(r"step (\d+)", text).group(1))


def settled(page) -> np.ndarray:
    """A screenshot once two in a row agree (the page has drawn what it was sent)."""
    last = scene_pixels(page)
    for _ in range(40):
        time.sleep(0.25)
        now = scene_pixels(page)
        if np.abs(now - last).mean() < 0.05:
            return now
        last = now
    return last


def test_the_page_draws_the_robots_and_redraws_them_when_the_playhead_moves(page, replay):
    v = replay.viewer
    wait_until(lambda: replay.opened, what="the viewer to see the page ready")  # the replay may start now
    assert len(replay.opened) == 1
    v.step_slider.value = 5
    wait_until(lambda: shown_in_page(page) == 5, what="the page to show step 5")
    before = settled(page)
    background = np.median(before.reshape(-1, 3), axis=0)
    drawn = (np.abs(before - background).sum(axis=-1) > 60).mean()
    assert drawn > 0.01, f"the canvas is blank: {drawn:.4f} of its pixels differ from the background"
    assert before.std() > 10

    v.step_slider.value = 40  # the robots have fallen and reset by then
    wait_until(lambda: shown_in_page(page) == 40, what="the page to show step 40")
    after = settled(page)
    changed = (np.abs(after - before).sum(axis=-1) > 60).mean()
    assert changed > 0.002, f"only {changed:.4f} of the canvas changed between steps 5 and 40"


def robot_pixels(pg) -> np.ndarray:
    """RGB of the canvas pixels in the humanoid's tan (red over blue; not the grey floor, not white)."""
    px = scene_pixels(pg).reshape(-1, 3)
    return px[(px[:, 0] - px[:, 2] > 25) & (px[:, 0] - px[:, 1] > 8) & (px[:, 1] - px[:, 2] > 8)]


def test_the_robots_are_drawn_in_full_colour_from_the_first_frame(browser, replay):
    # viser's default environment map holds the canvas at 5 % opacity until its HDR image is
    # decoded (seconds in software GL: pale robots), and without one glTF's default material,
    # a metal, draws them near black
    pg = browser.new_page()
    pg.goto(replay.viewer.url)
    pg.wait_for_selector("canvas", timeout=30_000)
    opacities: list[float] = []
    deadline = time.monotonic() + 60
    while True:
        opacities.append(pg.evaluate("Math.min(...[...document.querySelectorAll('canvas')].map(c => +getComputedStyle(c).opacity))"))
        robots = robot_pixels(pg)
        if len(robots) > 0.002 * scene_pixels(pg)[..., 0].size or time.monotonic() > deadline:
            break
    pg.close()
    assert len(robots) > 0, "no robot was drawn"
    assert min(opacities) == 1.0, f"the canvas was faded while the page loaded: opacities {sorted(set(opacities))}"
    assert robots.mean() > 90, f"the robots are drawn dark: mean RGB {robots.mean(axis=0).round()}"


def test_clicking_play_in_the_page_advances_the_timeline(page, replay):
    v = replay.viewer
    v.speed_slider.value = 0.1  # the recording took ~0.3 s of wall time: play it slowly ...
    v.loop_checkbox.value = True  # ... and round and round, so that Pause is there to click
    v.step_slider.value = 2
    wait_until(lambda: shown_in_page(page) == 2, what="the page to show step 2")
    assert replay.player.paused
    page.get_by_role("button", name="Play").click()
    wait_until(lambda: not replay.player.paused, what="the click to resume the player")
    assert ("set_paused", False) in replay.calls
    wait_until(lambda: (v.shown_step or 0) >= 8, what="the playhead to advance")
    wait_until(lambda: shown_in_page(page) >= 8, what="the page to show later steps")
    page.get_by_role("button", name="Pause").click()
    wait_until(lambda: replay.player.paused, what="the click to pause the player")
    v.loop_checkbox.value = False


def test_a_camera_preset_clicked_in_the_page_moves_its_camera(page, replay):
    v = replay.viewer
    client = next(iter(v.server.get_clients().values()))
    page.get_by_role("button", name="Side", exact=True).click()
    wait_until(lambda: v.camera is not None and v.camera.elevation == -5.0 and v.camera.azimuth == 90.0, what="Side")
    wait_until(
        lambda: np.allclose(client.camera.look_at, v.camera.look_at, atol=1e-3), what="the page to look at the envs"
    )
    side = np.array(client.camera.position)
    side_view = settled(page)
    page.get_by_role("button", name="Top", exact=True).click()
    wait_until(lambda: v.camera.elevation == -90.0, what="Top")
    wait_until(lambda: client.camera.position[2] > side[2] + 1.0, what="the page camera to rise")
    top = np.array(client.camera.position)
    look = np.array(client.camera.look_at)
    assert np.allclose(top[:2], look[:2], atol=1e-3)  # straight down
    top_view = settled(page)
    changed = (np.abs(top_view - side_view).sum(axis=-1) > 60).mean()
    assert changed > 0.02, f"the page looks the same from above: {changed:.4f} of the canvas changed"


def plot_pixels(page) -> float:
    """Share of the reward plot's pixels drawn in the colour of its total series."""
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(page.locator(".uplot-container").first.screenshot())).convert("RGB"))
    return float((np.abs(img.astype(int) - (0x1F, 0x77, 0xB4)).sum(axis=-1) < 60).mean())


def test_the_plot_has_drawn_series_while_playing(page, replay):
    v = replay.viewer
    v.speed_slider.value = 0.1
    v.loop_checkbox.value = True
    v.step_slider.value = 1
    wait_until(lambda: shown_in_page(page) == 1, what="the page to show step 1")
    paused = plot_pixels(page)
    assert paused > 0.003, f"the paused plot has no total series drawn ({paused:.4f})"
    page.get_by_role("button", name="Play").click()
    wait_until(lambda: not replay.player.paused, what="playing")
    seen = []
    for _ in range(3):
        time.sleep(0.7)
        seen.append((shown_in_page(page), plot_pixels(page)))
    page.get_by_role("button", name="Pause").click()
    wait_until(lambda: replay.player.paused, what="paused")
    v.loop_checkbox.value = False
    assert len({s for s, _ in seen}) > 1, f"the playhead did not move while playing: {seen}"
    assert all(px > 0.5 * paused for _, px in seen), f"the plot went empty while playing: {seen} (paused {paused:.4f})"


def test_play_at_the_last_step_restarts_playback(page, replay):
    v = replay.viewer
    v.speed_slider.value = 0.1
    last = replay.player.status().last_step
    v.step_slider.value = last
    wait_until(lambda: shown_in_page(page) == last, what="the page to show the last step")
    page.get_by_role("button", name="Play").click()
    wait_until(lambda: ("seek_step", replay.player.status().first_step) in replay.calls[-3:], what="a seek to the start")
    wait_until(lambda: shown_in_page(page) < last // 2, what="the page to show playback from the start")
    first = shown_in_page(page)
    wait_until(lambda: shown_in_page(page) > first, what="playback to go on")
    replay.set_paused(True)


def test_after_a_live_recording_ends_the_page_is_still_live(browser, tmp_path):
    import signal

    from rollout import topics
    from rollout.bag import Bag

    port, out = free_port(), tmp_path / "live.mcap"
    proc, lines = launch(
        "record.launch.py", "env:=synthetic", "num_envs:=2", "steps:=60", "view:=true", f"port:={port}", f"out:={out}"
    )
    try:
        wait_until(lambda: any("sim exited with code 0" in ln for ln in lines), 60, "the sim to finish")
        assert proc.poll() is None, "the launch ended with the recording:\n" + "".join(lines)
        pg = browser.new_page()
        pg.bring_to_front()  # a background tab is throttled
        pg.goto(f"http://127.0.0.1:{port}")
        pg.get_by_text(re.compile(r"recording ended at step 59")).wait_for(timeout=30_000)
        wait_until(lambda: shown_in_page(pg) == 59, what="the page to show the last step")
        # the page still answers: its play button goes to the server, which flips its label
        now = "Resume live view" if pg.get_by_text("Resume live view").count() else "Pause view"
        pg.get_by_text(now, exact=True).click()
        other = "Pause view" if now == "Resume live view" else "Resume live view"
        pg.get_by_text(other, exact=True).wait_for(timeout=30_000)
        pg.close()
        proc.send_signal(signal.SIGINT)  # Ctrl-C ends the launch; the bag is complete
        assert proc.wait(30) == 0, "".join(lines)
        with Bag(out) as bag:
            assert bag.count(topics.STATE) == 60
    finally:
        if proc.poll() is None:
            proc.kill()


def test_clicking_a_find_entry_moves_the_playhead_to_it_and_selects_its_env(page, replay):
    v = replay.viewer
    replay.set_paused(True)
    v.find.scope.value = "all envs"
    m = next(m for m in v.find.moments if m.kind == "highest")
    v.step_slider.value = 0 if m.step > 0 else 1
    wait_until(lambda: shown_in_page(page) != m.step, what="the page to show another step")
    page.get_by_role("button", name=m.label).click()
    wait_until(lambda: shown_in_page(page) == m.step, what=f"the page to show step {m.step}")
    assert v.selected_env == m.env and v.shown_step == m.step
    assert f"env {m.env}" in page.get_by_text(re.compile(r"step \d+ · t =")).inner_text()
    client = next(iter(v.server.get_clients().values()))  # the page's view went to that env
    wait_until(
        lambda: np.allclose(client.camera.look_at[:2], v.scene.bases[m.env][:2], atol=0.3),
        what=f"the page's camera to look at env {m.env}",
    )


def screen_xy(client, point: np.ndarray) -> tuple[float, float]:
    """Where `point` (world) lies on the page (pixels), from the page's own camera."""
    cam = client.camera
    eye, look, up = (np.asarray(a, float) for a in (cam.position, cam.look_at, cam.up_direction))
    fwd = (look - eye) / np.linalg.norm(look - eye)
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right)
    top = np.cross(right, fwd)
    d = point - eye
    t = np.tan(float(cam.fov) / 2) * float(d @ fwd)
    x, y = float(d @ right) / (t * float(cam.aspect)), float(d @ top) / t
    return (x + 1) / 2 * WIDTH, (1 - y) / 2 * HEIGHT


def test_clicking_a_robot_in_the_page_selects_its_env(page, replay):
    v = replay.viewer
    replay.set_paused(True)
    v.select_env(0)
    v.follow_checkbox.value = False
    v.step_slider.value = 1  # standing
    wait_until(lambda: shown_in_page(page) == 1, what="the page to show step 1")
    page.get_by_role("button", name="Top", exact=True).click()
    client = next(iter(v.server.get_clients().values()))
    wait_until(lambda: v.camera.elevation == -90.0 and client.camera.position[2] > 2, what="Top")
    settled(page)
    target = 3
    torso = v.scene.body_pos[1:, target].mean(axis=0)
    x, y = screen_xy(client, torso)
    page.mouse.click(x, y)
    wait_until(lambda: v.selected_env == target, what=f"the click at ({x:.0f}, {y:.0f}) to select env {target}")
    assert v.env_number.value == target


def test_a_replay_with_compare_draws_two_sets_of_robots_and_both_series(browser, tmp_path):
    import signal
    import subprocess

    from test_viewer_compare import record

    a, b = record(tmp_path / "a.mcap", "random", 4), record(tmp_path / "b.mcap", "zero", 4)
    port = free_port()
    proc, lines = launch("replay.launch.py", f"bag:={a}", f"compare:={b}", f"port:={port}")
    try:
        wait_until(lambda: any("open http" in ln for ln in lines), 60, "the viewer to start")
        pg = browser.new_page()
        pg.bring_to_front()
        pg.goto(f"http://127.0.0.1:{port}")  # plays once the page is open: A and B part ways
        pg.get_by_text(re.compile(r"over 4 common envs")).wait_for(timeout=30_000)  # the summary
        pg.get_by_text("B total").first.wait_for(timeout=30_000)  # B's line in the plot's legend
        assert pg.get_by_text("mean return").count() >= 1

        def ghost_share() -> float:  # B's translucent blue over the scene (A is tan, the floor grey)
            px = scene_pixels(pg).reshape(-1, 3)
            return float(((px[:, 2] - px[:, 0] > 30) & (px[:, 2] - px[:, 1] > 5)).mean())

        def robot_share() -> float:
            return len(robot_pixels(pg)) / scene_pixels(pg)[..., 0].size

        wait_until(lambda: ghost_share() > 0.002 and robot_share() > 0.002, 30, "both sets of robots on the canvas")
        pg.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert any("compare:" in ln and "plays along" in ln for ln in lines), "".join(lines)
