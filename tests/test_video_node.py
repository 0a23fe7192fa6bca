"""The video_encoder node, run as its own process and fed real recorded messages, writes the MP4 one would expect.

The test process is the zenoh router (on a port of its own, so nothing else on the machine can
talk into these tests) and publishes the raw CDR bytes of a bag recorded from the MuJoCo
humanoid with `RolloutRecorder`, the way the replay node plays it: robot description latched,
then state / reward terms per step, then a playback status saying the replay finished.
"""

from __future__ import annotations

import io
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

import rollout.runtime as rt
from rollout import topics
from rollout.bag import Bag
from rollout.codec import deserialize, get_type, serialize
from rollout.nodes.video_encoder import CAMERA_RAW
from rollout.policy import make_policy
from rollout.recording import RolloutRecorder
from rollout.render import FrameRenderer
from rollout.runtime import LATCHED, LOSSLESS, Node, Publisher
from rollout.sim import make_env
from ports import free_port

STEPS = 24
W, H = 160, 120


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    """A real recording: 4 humanoids, random actions (they move and fall), STEPS control steps."""
    env = make_env("mujoco:Humanoid-v5", num_envs=4, seed=0)
    policy = make_policy("random", obs_dim=env.info.obs_dim, act_dim=env.info.act_dim)
    return RolloutRecorder(env, max_steps=STEPS, out=tmp_path_factory.mktemp("bag") / "run.mcap").run(policy)


@pytest.fixture(scope="module")
def recorded(bag) -> dict[str, list[bytes]]:
    """{topic: [CDR bytes, ...]} of the topics the encoder takes, in recorded order."""
    with Bag(bag) as b:
        wanted = (topics.ROBOT, topics.STATE, topics.REWARD_TERMS)
        return {t: [bytes(b.raw(t, i).data) for i in range(b.count(t))] for t in wanted}


@pytest.fixture(scope="module")
def router() -> str:
    """This process hosts a zenoh router on a private port; the encoder processes join it."""
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    old = os.environ.get("ROLLOUT_ROUTER")
    rt.close()  # a session opened by another test module talks to another router
    os.environ["ROLLOUT_ROUTER"] = endpoint
    rt.init([], as_router=True, signals=False)
    yield endpoint
    rt.close()
    if old is None:
        os.environ.pop("ROLLOUT_ROUTER", None)
    else:
        os.environ["ROLLOUT_ROUTER"] = old


class Feeder:
    """Publishes what a replay publishes, from the test process."""

    def __init__(self, name: str) -> None:
        self.node = Node(name)
        n = self.node
        self.robot = n.create_publisher("rollout_msgs/msg/RobotDescription", topics.ROBOT, LATCHED)
        self.state = n.create_publisher("rollout_msgs/msg/State", topics.STATE, LOSSLESS)
        self.reward = n.create_publisher("rollout_msgs/msg/RewardTerms", topics.REWARD_TERMS, LOSSLESS)
        self.status = n.create_publisher("rollout_msgs/msg/PlaybackStatus", topics.PLAYBACK_STATUS, 10)

    def wait_for_encoder(self, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 30
        while self.status.get_subscription_count() < 1:  # its last subscription but the camera's
            assert proc.poll() is None, f"the encoder exited early: {proc.communicate()[1]}"
            assert time.monotonic() < deadline, "the encoder never subscribed"
            time.sleep(0.05)
        time.sleep(0.2)  # the camera subscriptions come right after

    def camera(self, raw: bool) -> Publisher:
        """A camera publisher, as a sim that renders has (only then does ``source:=auto`` pick the camera)."""
        if raw:
            return self.node.create_publisher("sensor_msgs/msg/Image", CAMERA_RAW, LOSSLESS)
        return self.node.create_publisher("sensor_msgs/msg/CompressedImage", topics.CAMERA, LOSSLESS)

    def play(self, recorded: dict[str, list[bytes]], steps: int | None = None) -> None:
        """Robot description, then each step's state and reward terms, as they were recorded."""
        self.robot.publish(recorded[topics.ROBOT][0])
        for state, reward in list(zip(recorded[topics.STATE], recorded[topics.REWARD_TERMS]))[:steps]:
            self.state.publish(state)
            self.reward.publish(reward)

    def finished(self, last_step: int) -> None:
        Status = get_type("rollout_msgs/msg/PlaybackStatus")
        self.status.publish(
            Status(step=last_step, first_step=0, last_step=last_step, rate=0.0, progress=1.0, finished=True)
        )

    def close(self) -> None:
        self.node.destroy_node()


@pytest.fixture
def feeder(router, request):
    f = Feeder(f"feeder_{request.node.name.split('[')[0][-30:]}")
    yield f
    f.close()


def start_encoder(router: str, out: Path | str | None, **params: object) -> subprocess.Popen:
    args = [sys.executable, "-m", "rollout.nodes.video_encoder", "--ros-args"]
    if out is not None:
        args += ["-p", f"out:={out}"]
    for name, value in {"width": W, "height": H, **params}.items():
        args += ["-p", f"{name}:={str(value).lower() if isinstance(value, bool) else value}"]
    env = dict(os.environ, ROLLOUT_ROUTER=router)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the encoder did not exit within {timeout} s; stderr:\n{err}")
    return proc.returncode, err


def probe(path: Path) -> tuple[int, float]:
    """(frames, seconds) as ffmpeg decodes the file."""
    return imageio_ffmpeg.count_frames_and_secs(str(path))


def decode(path: Path) -> tuple[dict, list[np.ndarray]]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return meta, [np.frombuffer(b, np.uint8).reshape(h, w, 3).astype(int) for b in reader]


def rendered(recorded: dict[str, list[bytes]], robot: object, **view: object) -> np.ndarray:
    """[T, H, W, 3] every recorded state drawn in this process, without overlay."""
    State = get_type("rollout_msgs/msg/State")
    with FrameRenderer(robot.model, width=W, height=H, spacing=robot.env_spacing, **view) as r:
        return np.stack([r.render(deserialize(data, State)).astype(int) for data in recorded[topics.STATE]])


def nearest(frame: np.ndarray, candidates: np.ndarray) -> int:
    """Index of the candidate frame closest to `frame` (mean squared difference)."""
    return int(((candidates - frame[None]) ** 2).reshape(len(candidates), -1).mean(axis=1).argmin())


# ----------------------------------------------------------------------------- tests


def test_a_played_rollout_becomes_an_mp4_with_one_frame_per_step(router, feeder, recorded, tmp_path):
    out = tmp_path / "run.mp4"
    proc = start_encoder(router, out, preset="side", envs="0")
    feeder.wait_for_encoder(proc)
    feeder.play(recorded)
    feeder.finished(STEPS - 1)
    rc, err = wait(proc)
    assert rc == 0, err
    assert f"{STEPS} frames" in err  # says what it wrote

    robot = deserialize(recorded[topics.ROBOT][0], get_type("rollout_msgs/msg/RobotDescription"))
    frames, seconds = probe(out)
    assert frames == STEPS  # one per control step ...
    assert seconds == pytest.approx(STEPS * robot.dt, abs=0.011)  # ... at 1/dt
    meta, decoded = decode(out)
    assert meta["size"] == (W, H) and len(decoded) == STEPS
    assert b"moof" not in out.read_bytes()  # finished properly: a plain MP4

    # frame i shows env 0 in recorded state i (of all the states, it is the one it looks most like),
    # with the step and the reward burnt in at the top left
    box = (slice(0, 40), slice(0, 90))
    plain = rendered(recorded, robot, envs=[0], preset="side")
    for i, frame in enumerate(decoded):
        outside = frame.copy()
        outside[box] = plain[i][box]
        assert nearest(outside, plain) == i
        assert np.abs(frame[box] - plain[i][box]).mean() > 6  # the overlay is there (encoding noise alone: ~1-2)
    for frame in decoded:
        assert frame.std() > 20  # a picture, not a flat colour
    moves = [np.abs(a - b)[40:].mean() for a, b in itertools.pairwise(decoded)]
    assert np.mean(moves) > 1.0 and np.abs(decoded[0] - decoded[-1])[40:].mean() > 5  # the robot moves


def test_the_replay_node_at_rate_0_drives_the_encoder_to_a_complete_video(router, bag, tmp_path):
    """The graph replay.launch.py runs with video:=out.mp4: replay (rate 0, waiting for its subscriber) + encoder."""
    out = tmp_path / "replayed.mp4"
    encoder = start_encoder(router, out, preset="follow")
    replay = subprocess.Popen(
        [sys.executable, "-m", "rollout.nodes.replay", "--ros-args", "-p", f"bag:={bag}", "-p", "rate:=0.0"]
        + ["-p", "wait_for_subscribers:=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, ROLLOUT_ROUTER=router),
    )
    rc, err = wait(encoder)
    replay_rc, replay_err = wait(replay)
    assert rc == 0, err
    assert replay_rc == 0, replay_err
    assert probe(out)[0] == STEPS  # every recorded step, none dropped, none doubled


def test_fps_resamples_by_sim_time_and_a_grid_shows_several_envs(router, feeder, recorded, tmp_path):
    out = tmp_path / "grid.mp4"
    proc = start_encoder(router, out, fps=30, envs="0-3", preset="top", overlay=False)
    feeder.wait_for_encoder(proc)
    feeder.play(recorded)
    feeder.finished(STEPS - 1)
    rc, err = wait(proc)
    assert rc == 0, err

    robot = deserialize(recorded[topics.ROBOT][0], get_type("rollout_msgs/msg/RobotDescription"))
    expected = int((STEPS - 1) * robot.dt * 30 + 1e-6) + 1  # frames at 0, 1/30, ... up to the last step
    assert probe(out) == (expected, pytest.approx(expected / 30, abs=0.011))
    _, decoded = decode(out)
    # frame k shows the step nearest its time k / 30, with all four envs in it
    grid = rendered(recorded, robot, envs=[0, 1, 2, 3], preset="top")
    assert [nearest(frame, grid) for frame in decoded] == [round(k / 30 / robot.dt) for k in range(expected)]
    alone = rendered(recorded, robot, envs=[0], preset="top")
    assert ((decoded[0] - grid[0]) ** 2).mean() * 3 < ((decoded[0] - alone[0]) ** 2).mean()


def test_a_run_stopped_by_ctrl_c_leaves_a_playable_file(router, feeder, recorded, tmp_path):
    out = tmp_path / "stopped.mp4"
    proc = start_encoder(router, out)
    feeder.wait_for_encoder(proc)
    feeder.play(recorded, steps=10)  # no "finished": the encoder would wait for more
    time.sleep(2.0)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    rc, err = wait(proc, timeout=30)
    assert rc == 0, err
    frames, _ = probe(out)
    assert frames == 10  # every step it received
    _, decoded = decode(out)
    assert decoded[-1].std() > 20 and b"moof" not in out.read_bytes()


def test_sigterm_draws_the_states_sent_before_it_but_not_those_sent_after(router, feeder, recorded, tmp_path):
    """How a launcher stops the encoder once the sim has exited: what is still queued becomes frames;
    a publisher still going after the stop (a replay) does not keep the encoder drawing."""
    out = tmp_path / "drained.mp4"
    proc = start_encoder(router, out)
    feeder.wait_for_encoder(proc)
    feeder.play(recorded)  # all sent at once: most of it is still queued when the signal comes
    proc.send_signal(signal.SIGTERM)
    for line in proc.stderr:  # type: ignore[union-attr]
        if "stopping: drawing the states still in flight" in line:
            break
    else:
        pytest.fail(f"the encoder did not drain what was in flight: {proc.communicate()}")
    feeder.play(recorded)  # sent after the stop: step 0 again, which would start a second stretch
    rc, err = wait(proc)
    assert rc == 0, err
    assert f"{STEPS} frames" in err, err
    assert probe(out)[0] == STEPS


def test_max_frames_ends_the_video_early(router, feeder, recorded, tmp_path):
    out = tmp_path / "short.mp4"
    proc = start_encoder(router, out, max_frames=5)
    feeder.wait_for_encoder(proc)
    feeder.play(recorded)
    rc, err = wait(proc)
    assert rc == 0, err
    assert probe(out)[0] == 5


def _png(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (W * 2, H * 2), colour).save(buf, format="PNG")
    return buf.getvalue()


COLOURS = [(220, 30, 30), (30, 200, 40), (30, 60, 220), (230, 230, 40), (200, 40, 200), (40, 210, 210)]


@pytest.mark.parametrize("kind", ["compressed", "raw"])
def test_camera_frames_a_sim_publishes_are_encoded_instead_of_rendering(router, feeder, recorded, tmp_path, kind):
    out = tmp_path / f"camera_{kind}.mp4"
    camera = feeder.camera(raw=kind == "raw")
    proc = start_encoder(router, out, fps=10, overlay=False)  # source auto
    feeder.wait_for_encoder(proc)
    feeder.robot.publish(recorded[topics.ROBOT][0])
    for i, colour in enumerate(COLOURS):
        feeder.state.publish(recorded[topics.STATE][i])
        feeder.reward.publish(recorded[topics.REWARD_TERMS][i])
        if kind == "compressed":
            msg = get_type("sensor_msgs/msg/CompressedImage")(format="png", data=np.frombuffer(_png(colour), np.uint8))
            camera.publish(serialize(msg))
        else:  # bgr8, as OpenCV cameras send it
            bgr = np.empty((H, W, 3), np.uint8)
            bgr[:] = colour[::-1]
            msg = get_type("sensor_msgs/msg/Image")(
                height=H, width=W, encoding="bgr8", step=W * 3, data=bgr.reshape(-1)
            )
            camera.publish(serialize(msg))
    feeder.finished(len(COLOURS) - 1)
    rc, err = wait(proc)
    assert rc == 0, err
    assert probe(out) == (len(COLOURS), pytest.approx(len(COLOURS) / 10, abs=0.011))
    meta, decoded = decode(out)
    assert meta["size"] == (W, H)  # scaled to the size asked for
    for frame, colour in zip(decoded, COLOURS):
        assert np.abs(frame.reshape(-1, 3).mean(axis=0) - colour).max() < 12  # the sim's picture, not a rendering


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "out:="),
        ({"out": "{tmp}/no/such/folder/x.mp4"}, "does not exist"),
        ({"out": "{tmp}"}, "is a folder"),
        ({"out": "{tmp}/x.mp4", "preset": "diagonal"}, "unknown camera preset 'diagonal'"),
        ({"out": "{tmp}/x.mp4", "envs": "a-b"}, "envs takes"),
        ({"out": "{tmp}/x.mp4", "source": "webcam"}, "source"),
        ({"out": "{tmp}/x.mp4", "fps": -5}, "fps"),
    ],
)
def test_bad_parameters_fail_at_start_in_one_line(router, tmp_path, params, expected):
    values = {k: str(v).format(tmp=tmp_path) for k, v in params.items()}
    out = values.pop("out", None)
    rc, err = wait(start_encoder(router, out, **values), timeout=30)
    assert rc != 0
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "x.mp4").exists()


def test_no_robot_description_ends_in_a_clear_error(router, tmp_path):
    out = tmp_path / "never.mp4"
    started = time.monotonic()
    rc, err = wait(start_encoder(router, out, robot_timeout=1.5), timeout=30)
    assert rc != 0 and "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "no robot description" in errors[0] and "1.5 s" in errors[0]
    assert 1.5 <= time.monotonic() - started < 15
    assert not out.exists()  # no empty or broken file left behind


def test_envs_missing_from_the_recording_end_in_a_clear_error(router, feeder, recorded, tmp_path):
    out = tmp_path / "missing.mp4"
    proc = start_encoder(router, out, envs="2-9")
    feeder.wait_for_encoder(proc)
    feeder.play(recorded, steps=3)
    rc, err = wait(proc, timeout=30)
    assert rc != 0 and "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "env 9 is not in this rollout: it has 4 envs" in errors[0]


@pytest.mark.parametrize("fps", [0, 30])
def test_a_looping_replay_starts_a_new_stretch_instead_of_freezing(recorded, tmp_path, fps):
    """Sim time jumping back (loop on, or a seek) restarts the frame clock; no frames are lost or stuck.
    (In-process: the node's frame logic, `RolloutVideo`, without middleware, fed the same messages twice.)"""
    from rollout.video_stream import RolloutVideo

    types = {
        t: get_type(n)
        for t, n in (
            (topics.ROBOT, "rollout_msgs/msg/RobotDescription"),
            (topics.STATE, "rollout_msgs/msg/State"),
            (topics.REWARD_TERMS, "rollout_msgs/msg/RewardTerms"),
        )
    }
    out = tmp_path / "loop.mp4"
    video = RolloutVideo(str(out), width=W, height=H, fps=fps, overlay=False)
    video.add_robot(deserialize(recorded[topics.ROBOT][0], types[topics.ROBOT]))
    for _ in range(2):
        for state, reward in zip(recorded[topics.STATE], recorded[topics.REWARD_TERMS]):
            video.add_state(deserialize(state, types[topics.STATE]))
            video.add_reward(deserialize(reward, types[topics.REWARD_TERMS]))
    frames = video.close()
    robot = video.robot
    once = STEPS if fps == 0 else int((STEPS - 1) * robot.dt * fps + 1e-6) + 1
    assert frames == 2 * once and probe(out)[0] == 2 * once
    _, decoded = decode(out)
    assert nearest(decoded[once], rendered(recorded, robot, envs=[0], preset="side")) == 0  # starts over at step 0
