"""`rollout bag share`: a real recording (MuJoCo humanoid, random actions) exported as one HTML page.

The page is read back the way its player reads it (the inlined base64 -> zstd -> msgpack scene,
then the binary buffers), so the assertions are on what the page will draw: which steps, which
envs, and where each body is, against the bag's own State messages. The errors a user can make
end in one line and exit 2, and leave no file behind.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import msgspec
import numpy as np
import pytest
import zstandard

from recordings import record_humanoid
from rollout import topics
from rollout.bag import Bag
from rollout.cli import main as cli
from rollout.export.share import frame_stride, share_html, view_track
from rollout.model import env_grid_offsets

ENVS, STEPS = 4, 60


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    return record_humanoid(tmp_path_factory.mktemp("share") / "run", num_envs=ENVS, steps=STEPS)


@pytest.fixture(scope="module")
def recorded(bag) -> dict:
    with Bag(bag) as b:
        robot = b.decode(topics.ROBOT, 0)
        got = b.read_arrays(topics.STATE, ["step", "body_poses"])
    return {"robot": robot, "steps": got["step"], "poses": got["body_poses"].reshape(len(got["step"]), ENVS, -1, 7)}


class Page:
    """A written page as its player sees it: the recorded messages and their binary buffers."""

    def __init__(self, path: Path) -> None:
        self.html = path.read_text()
        data = re.search(r'window\.__VISER_EMBED_DATA__="([A-Za-z0-9+/=]*)"', self.html).group(1)
        raw = base64.b64decode(data)
        inner = zstandard.ZstdDecompressor().decompress(raw[8:], max_output_size=int.from_bytes(raw[:8], "little"))
        n = int.from_bytes(inner[:8], "little")
        doc = msgspec.msgpack.decode(inner[8 : 8 + n])
        self.duration = doc["durationSeconds"]
        self.messages = doc["messages"]  # [(time, message dict)]
        self.buffers, at = [], 8 + n
        for size in doc["binaryBufferLengths"]:
            at += -at % 8
            self.buffers.append(inner[at : at + size])
            at += size

    def labels(self) -> list[str]:
        return [m["updates"]["text"] for _, m in self.messages
                if m["type"] == "SceneNodeUpdateMessage" and "text" in m["updates"]]  # fmt: skip

    def shown_steps(self) -> list[int]:
        return [int(re.search(r"step (\d+)", t).group(1)) for t in self.labels()]

    def array(self, placeholder: dict, width: int) -> np.ndarray:
        return np.frombuffer(self.buffers[placeholder["__binary_index"]], placeholder["dtype"]).reshape(-1, width)

    def body_positions(self, body: str) -> list[np.ndarray]:
        """[E, 3] instance positions of one body's batched mesh, one per frame, in order."""
        return [self.array(m["updates"]["batched_positions"], 3) for _, m in self.messages
                if m["type"] == "SceneNodeUpdateMessage" and m["name"].startswith(f"/world/robot/{body}")
                and "batched_positions" in m["updates"]]  # fmt: skip

    def world_positions(self) -> np.ndarray:
        return np.array([m["position"] for _, m in self.messages
                         if m["type"] == "SetPositionMessage" and m["name"] == "/world"])  # fmt: skip


def test_page_is_one_file_that_fetches_nothing(bag, tmp_path, recorded):
    out = tmp_path / "run.html"
    shared = share_html(bag, out)
    page = Page(out)
    assert shared.size == out.stat().st_size and list(tmp_path.iterdir()) == [out]
    # nothing to load from elsewhere: no script, style, image or font by URL
    assert not re.search(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["'](?!data:)""", page.html)
    assert {u for u in re.findall(r"https?://[^\s\"'<>)]+", page.html)} <= {"http://www.w3.org/2000/svg"}
    assert "__VISER_EMBED_DATA__" in page.html and f"<title>{bag.name} · steps 0-" in page.html
    meshes = [m for _, m in page.messages if m["type"] == "BatchedGlbMessage"]
    assert len(meshes) == len(recorded["robot"].body_names)  # one batched mesh per body


def test_page_plays_the_steps_asked_for_at_the_fps_asked_for(bag, tmp_path, recorded):
    dt = float(recorded["robot"].dt)
    stride = frame_stride(dt, 30.0)
    assert stride == 2  # 15 ms control steps: every other one makes 33 frames per sim second
    shared = share_html(bag, tmp_path / "part.html", steps=(10, 40))
    page = Page(shared.path)
    assert page.shown_steps() == list(range(10, 40, stride))
    assert (shared.first_step, shared.last_step, shared.frames, shared.stride) == (10, 38, 15, 2)
    assert page.duration == pytest.approx((38 - 10 + stride) * dt)  # sim time, the last frame held one frame
    times = sorted({t for t, m in page.messages if m["type"] == "SceneNodeUpdateMessage"})
    assert np.allclose(np.diff(times), stride * dt)

    every = share_html(bag, tmp_path / "every.html", fps=1000.0)  # at or above the control rate: every step
    assert Page(every.path).shown_steps() == list(range(STEPS)) and every.stride == 1


def test_page_draws_each_body_where_the_bag_has_it(bag, tmp_path, recorded):
    shared = share_html(bag, tmp_path / "poses.html", steps=(20, 30), fps=1000.0)
    page = Page(shared.path)
    offsets = env_grid_offsets(ENVS, float(recorded["robot"].env_spacing))
    drawn = np.stack(page.body_positions("00_"))  # [F, E, 3] of the first body, in the moving world frame
    want = recorded["poses"][20:30, :, 0, :3] + offsets
    np.testing.assert_allclose(drawn, want, atol=1e-5)
    # the world is moved so the view stays centred on the envs' (median, smoothed) base
    world = page.world_positions()
    assert world.shape == (10, 3) and np.allclose(world[:, 2], 0)


def test_envs_and_max_envs_choose_what_is_drawn(bag, tmp_path, recorded):
    page = Page(share_html(bag, tmp_path / "two.html", envs=[3, 1], fps=1000.0).path)
    drawn = np.stack(page.body_positions("00_"))
    offsets = env_grid_offsets(ENVS, float(recorded["robot"].env_spacing))[[3, 1]]
    np.testing.assert_allclose(drawn, recorded["poses"][:, [3, 1], 0, :3] + offsets, atol=1e-5)
    assert page.labels()[0].startswith("env 3 · step 0")

    capped = share_html(bag, tmp_path / "capped.html", max_envs=2)
    assert capped.env_ids == (0, 1) and capped.notes == ("drawing the first 2 of 4 envs (--max-envs)",)
    assert all(p.shape == (2, 3) for p in Page(capped.path).body_positions("00_"))


def test_a_model_that_cannot_be_meshed_is_drawn_as_spheres(tmp_path):
    from rollout.export.synthetic import write_synthetic_rollout

    write_synthetic_rollout(tmp_path / "syn", steps=20, num_envs=3, num_bodies=3)  # its model is `<mujoco/>`
    page = Page(share_html(tmp_path / "syn", tmp_path / "syn.html").path)
    assert [m["name"] for _, m in page.messages if m["type"] == "BatchedGlbMessage"] == [
        "/world/robot/00_body0", "/world/robot/01_body1", "/world/robot/02_body2"
    ]
    assert page.shown_steps() == list(range(0, 20, 2))


def test_view_track_follows_the_median_env_and_ignores_one_reset():
    F, E = 90, 8
    bases = np.zeros((F, E, 3))
    bases[:, :, 0] = np.arange(F)[:, None] * 0.05  # everyone walks along +x
    bases[45:, 0, 0] = 0.0  # env 0 falls and restarts at the origin
    track = view_track(bases, "side", 30)
    assert np.all(np.diff(track[:, 0]) >= 0) and track[-1, 0] > 3.5  # keeps walking with the others
    chase = view_track(bases, "follow", 30)
    np.testing.assert_allclose(chase[:, 0], bases[:, 0, 0])  # follow: env 0 itself


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli(["bag", "share", *argv])
    except SystemExit as e:
        code = e.code
    got = capsys.readouterr()
    return code, got.out, got.err


def test_cli_writes_the_page_and_says_what_is_in_it(bag, tmp_path, capsys):
    out = tmp_path / "cli.html"
    code, text, _ = run_cli(capsys, str(bag), "-o", str(out), "--steps", "0:30", "--envs", "0-1", "--camera", "Top",
                            "--no-progress")  # fmt: skip
    assert code == 0 and out.is_file()
    assert re.fullmatch(rf"wrote {re.escape(str(out))}: steps 0-28 \(15 frames, every 2 steps, 0\.4 s\), 2 envs, [\d.]+ MB\n", text)
    camera = [m for _, m in Page(out).messages if m["type"] == "SetCameraUpDirectionMessage"]
    assert camera and camera[0]["initial"] and np.allclose(camera[0]["position"], [0, 1, 0], atol=1e-6)  # Top: +y up


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuch_bag", "-o", "{out}"], r"nosuch_bag"),
        (["{bag}", "-o", "{out}", "--steps", "40:10"], r"--steps 40:10 is empty"),
        (["{bag}", "-o", "{out}", "--steps", "500:900"], r"--steps 500:900 holds no recorded step; the bag has steps 0 to 59"),
        (["{bag}", "-o", "{out}", "--steps", "ten"], r"--steps takes START:STOP"),
        (["{bag}", "-o", "{out}", "--envs", "7"], r"--envs must be between 0 and 3"),
        (["{bag}", "-o", "{out}", "--fps", "0"], r"--fps must be a positive number"),
        (["{bag}", "-o", "{out}", "--camera", "Back"], r"unknown camera preset 'Back'"),
        (["{bag}", "-o", "{dir}/run.npz"], r"must end in \.html"),
    ],
)
def test_a_mistake_ends_in_one_line_and_writes_nothing(bag, tmp_path, capsys, args, message):
    out = tmp_path / "x.html"
    argv = [a.format(bag=bag, out=out, dir=tmp_path) for a in args]
    code, _, err = run_cli(capsys, *argv, "--no-progress")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("rollout: error: ")
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_page_is_kept_unless_forced(bag, tmp_path, capsys):
    out = tmp_path / "run.html"
    out.write_text("mine")
    code, _, err = run_cli(capsys, str(bag), "-o", str(out), "--no-progress")
    assert code == 2 and err.strip() == f"rollout: error: {out} already exists; pass -f to overwrite it"
    assert out.read_text() == "mine"
    code, _, _ = run_cli(capsys, str(bag), "-o", str(out), "-f", "--no-progress", "--steps", ":10")
    assert code == 0 and Page(out).shown_steps() == [0, 2, 4, 6, 8]
