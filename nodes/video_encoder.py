"""Encode a rollout into an MP4 as it is played or simulated: one frame per control step, streamed to ffmpeg.

Topics in:
- /rollout/robot (RobotDescription, latched): the model to draw, dt, env spacing.
- /rollout/state (State, lossless, so a replay at rate 0 goes at the encoder's pace): each state is
  drawn with `FrameRenderer` (MuJoCo offscreen) and appended to a `VideoWriter`.
- /rollout/reward_terms (RewardTerms): step and total reward burnt into the frames (`overlay`).
- /rollout/playback/status (PlaybackStatus): when ``finished``, the file is finished and the node exits 0.
- /rollout/camera/image/compressed (sensor_msgs/CompressedImage) and /rollout/camera/image
  (sensor_msgs/Image): frames a sim rendered itself; with ``source:=auto`` they are encoded instead
  of rendering the states when a sim publishes them.
Out: the video file. Stopped early (Ctrl-C, SIGTERM, ``max_frames``), the file is still a valid MP4.

    ros2 run rollout video_encoder --ros-args -p out:=run.mp4 -p preset:=follow -p envs:=0-3
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import rollout.runtime as rt
from rollout import topics
from rollout.cameras import parse_preset
from rollout.codec import get_type
from rollout.errors import ParameterError, RolloutError
from rollout.runtime import LATCHED, LOSSLESS, Node, run_node
from rollout.runtime.params import parse_env_ids
from rollout.video import VideoWriter, check_output_path

CAMERA_RAW = topics.CAMERA.removesuffix("/compressed")  # image_transport: raw next to .../compressed
_HOLD_FOR_CAMERA = 8  # auto: states held while a camera publisher is known but has not sent a frame
_HOLD_FOR_REWARD = 8  # overlay: states held while their reward has not arrived (a sim without rewards)
_HOLD_WITHOUT_ROBOT = 32  # states kept while the robot description has not arrived yet
_FINISH_QUIET_S = 0.2  # after the replay finished: nothing new for this long and the last step is in
_FINISH_GIVE_UP_S = 3.0  # after the replay finished: nothing at all for this long


class VideoEncoderError(RolloutError):
    """A stream the encoder cannot turn into a video (no robot description, envs not in it, no frames)."""


@dataclass(frozen=True)
class VideoEncoderParams:
    out: str = ""
    """Video file to write (.mp4); required. Replaced when it exists."""
    fps: float = 0.0
    """Frames per second; 0: one frame per control step at 1/dt. Other rates resample by sim time (nearest step)."""
    width: int = 640
    """Frame width in pixels."""
    height: int = 480
    """Frame height in pixels."""
    crf: int = 23
    """libx264 constant rate factor 0-51, lower is better and bigger."""
    quality: float = 0.0
    """1-10 (10 best) as in imageio, instead of crf; 0: use crf."""
    encoder_preset: str = "veryfast"
    """libx264 speed preset (ultrafast ... veryslow): faster encodes, bigger files."""
    preset: str = "side"
    """Camera: top, side, front or follow (case-insensitive)."""
    envs: str = "0"
    """Envs to show on one grid, e.g. 0, 0-3, 0,2,5 or all."""
    overlay: bool = True
    """Burn the step and the total reward into each frame."""
    source: Literal["auto", "render", "camera"] = "auto"
    """render: draw the states; camera: encode the sim's camera images; auto: the camera's when a sim publishes them."""
    max_frames: int = 0
    """Finish the video and exit after this many frames; 0: no limit."""
    robot_timeout: float = 10.0
    """Seconds to wait for the robot description on /rollout/robot before giving up."""


# ----------------------------------------------------------------------------- pure functions


def parse_envs(text: str) -> list[int] | None:
    """'0,3,5-7' -> [0, 3, 5, 6, 7]; 'all' -> None (every env of the recording)."""
    if text.strip().lower() == "all":
        return None
    envs = parse_env_ids(text, "envs")
    if not envs:
        raise ParameterError(f"envs names no env: {text!r}")
    return envs


def check_params(p: VideoEncoderParams) -> None:
    """Raise a one-line `ParameterError`/`VideoError` for anything wrong before a frame is drawn."""
    if not p.out:
        raise ParameterError("no output file: pass -p out:=video.mp4")
    parse_preset(p.preset)
    parse_envs(p.envs)
    if not (math.isfinite(p.fps) and p.fps >= 0):
        raise ParameterError(f"fps must be 0 (one frame per step) or a positive number, got {p.fps}")
    if p.width <= 0 or p.height <= 0:
        raise ParameterError(f"width and height must be positive, got {p.width}x{p.height}")
    if not 0 <= p.crf <= 51:
        raise ParameterError(f"crf must be an integer from 0 to 51, got {p.crf}")
    if p.quality != 0 and not 1 <= p.quality <= 10:
        raise ParameterError(f"quality must be 0 (use crf) or from 1 to 10, got {p.quality}")
    if p.max_frames < 0:
        raise ParameterError(f"max_frames must be >= 0, got {p.max_frames}")
    if not p.robot_timeout > 0:
        raise ParameterError(f"robot_timeout must be positive, got {p.robot_timeout}")
    check_output_path(p.out)  # creates it empty: an unwritable path fails now, in one line


def decode_image(msg: Any) -> np.ndarray:
    """A sensor_msgs/CompressedImage (jpeg, png...) or Image (rgb8, bgr8, rgba8, bgra8, mono8) as RGB [H, W, 3]."""
    if hasattr(msg, "format"):  # CompressedImage
        import io

        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(np.asarray(msg.data, np.uint8).tobytes())) as img:
                return np.asarray(img.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise VideoEncoderError(f"a camera image ({msg.format or 'no format'}) does not decode: {exc}") from None
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1, "8uc3": 3}
    enc = str(msg.encoding).lower()
    if enc not in channels:
        raise VideoEncoderError(
            f"camera images in encoding {msg.encoding!r} are not supported; use rgb8, bgr8, rgba8, bgra8 or mono8"
        )
    h, w, c = int(msg.height), int(msg.width), channels[enc]
    data = np.asarray(msg.data, np.uint8)
    step = int(msg.step) or w * c
    if h * step > data.size or w * c > step:
        raise VideoEncoderError(f"a camera image says {w}x{h} {enc} (step {step}) but holds {data.size} bytes")
    pix = data[: h * step].reshape(h, step)[:, : w * c].reshape(h, w, c)
    if c == 1:
        return np.repeat(pix, 3, axis=2)
    rgb = pix[..., 2::-1] if enc.startswith("bgr") else pix[..., :3]
    return np.ascontiguousarray(rgb)


def fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """`frame` scaled to width x height (unchanged when it already is that size)."""
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR))


class FrameClock:
    """Which received control steps become which video frames.

    period None: every step is one frame. Otherwise frame k is due at t0 + k * period (t0: sim time
    of the first step) and shows the step nearest to that time, so a rate below 1/dt skips steps and
    one above repeats them. A jump in sim time backwards or forwards by more than `max_gap` seconds
    (a seek, a loop) restarts the clock at the new step instead of filling the gap.
    """

    def __init__(self, period: float | None, max_gap: float = 1.0) -> None:
        self.period = period
        self.max_gap = max_gap
        self.restarted = False
        """The last `add` began a new stretch (the first step, or a jump in time)."""
        self._t0 = 0.0
        self._k = 0
        self._last: float | None = None

    def add(self, t: float) -> tuple[int, int]:
        """Step at sim time `t` arrived: (frames now due that show the previous step, frames that show this one)."""
        last, self._last = self._last, t
        self.restarted = last is None or t < last - 1e-9 or t - last > self.max_gap
        if self.period is None:
            return 0, 1
        if self.restarted:
            self._t0, self._k = t, 0
            last = None
        eps = 1e-6 * self.period
        n_prev = n_this = 0
        while (due := self._t0 + self._k * self.period) <= t + eps:
            if last is not None and due - last < t - due:
                n_prev += 1
            else:
                n_this += 1
            self._k += 1
        return n_prev, n_this


# ----------------------------------------------------------------------------- the video, no middleware


class RolloutVideo:
    """Turns robot description, states, rewards and camera images into frames of one video file.

    Streams: a frame goes to ffmpeg as soon as it is drawn; at most a few states wait (for their
    reward, or for a camera frame under ``source=auto``). No middleware: the node feeds it.
    """

    def __init__(self, params: VideoEncoderParams) -> None:
        check_params(params)
        self.p = params
        self.envs = parse_envs(params.envs)
        self.mode: str | None = None if params.source == "auto" else params.source
        self.camera_announced = False  # set by the node when the graph has a camera publisher
        self.robot: Any = None
        self.renderer: Any = None
        self.writer: VideoWriter | None = None
        self.clock: FrameClock | None = None
        self.last_step: int | None = None  # newest state received
        self._pending: deque[list[Any]] = deque()  # [state, a later step's reward came after it]
        self._rewards: dict[int, np.ndarray] = {}
        self._prev: Any = None  # (state, reward, frame or None): the step before, for resampling
        self.closed = False

    # ------------------------------------------------------------------ inputs

    @property
    def frames(self) -> int:
        return self.writer.frames_written if self.writer is not None else 0

    @property
    def full(self) -> bool:
        """max_frames reached."""
        return self.p.max_frames > 0 and self.frames >= self.p.max_frames

    def add_robot(self, robot: Any) -> None:
        if self.robot is not None:
            return  # republished (latched, after a seek): the first one stays
        if self.envs is not None and max(self.envs) >= int(robot.num_envs):
            raise VideoEncoderError(
                f"env {max(self.envs)} is not in this rollout: it has {robot.num_envs} envs (envs:={self.p.envs})"
            )
        if not robot.dt > 0 and self.p.fps == 0:
            raise VideoEncoderError("the robot description has no dt; pass -p fps:=30")
        self.robot = robot
        self.clock = FrameClock(self._period(), max_gap=max(1.0, 10 * float(robot.dt or 0)))
        self._drain()

    def _period(self) -> float | None:
        """None: one frame per step; else seconds of sim time per frame."""
        dt = float(self.robot.dt) if self.robot is not None else 0.0
        if self.p.fps == 0 or (dt > 0 and abs(self.p.fps * dt - 1) < 1e-3):
            return None
        return 1.0 / self.p.fps

    def _fps(self) -> float:
        if self.p.fps > 0:
            return self.p.fps
        if self.robot is not None and self.robot.dt > 0:
            return 1.0 / float(self.robot.dt)
        return 30.0

    def add_state(self, state: Any) -> None:
        step = int(state.step)
        if step == self.last_step:
            return  # the same step again (a replay republishing after pause or seek): one frame per step
        self.last_step = step
        if self.mode == "camera":
            return
        self._pending.append([state, False])
        self._drain()

    def add_reward(self, msg: Any) -> None:
        step = int(msg.step)
        self._rewards[step] = np.array(msg.total, dtype=np.float64)
        for item in self._pending:  # rewards come in step order: these states will not get theirs
            item[1] = item[1] or int(item[0].step) < step
        while len(self._rewards) > 64:
            del self._rewards[next(iter(self._rewards))]
        self._drain()

    def add_image(self, msg: Any) -> None:
        if self.mode is None and self.frames == 0:
            self.mode = "camera"  # auto: the sim renders; its frames win over drawing the states
            self._pending.clear()
        if self.mode != "camera" or self.full:
            return
        frame = fit_frame(decode_image(msg), self.p.width, self.p.height)
        if self.p.overlay and self.last_step is not None:
            from rollout.render import draw_label

            frame = np.array(frame)  # writable
            reward = self._rewards.get(self.last_step)
            text = f"step {self.last_step}"
            if reward is not None and reward.size:
                env = self.envs[0] if self.envs and self.envs[0] < reward.size else 0
                text += f"\nreward {reward[env]:.2f}"
            draw_label(frame, text)
        self._append(frame, 1)

    # ------------------------------------------------------------------ states -> frames

    def _drain(self, flush: bool = False) -> None:
        if self.robot is None:
            while len(self._pending) > _HOLD_WITHOUT_ROBOT:  # bounded memory until the description comes
                self._pending.popleft()
            return
        if self.mode is None and self._pending:
            if self.camera_announced and len(self._pending) < _HOLD_FOR_CAMERA and not flush:
                return  # a camera publisher exists: give its first frame a chance
            self.mode = "render"
        while self._pending and not self.full:
            head, passed = self._pending[0]
            reward = self._rewards.get(int(head.step))
            waiting = self.p.overlay and not (passed or flush or len(self._pending) > _HOLD_FOR_REWARD)
            if reward is None and waiting:
                return  # its reward comes right after it
            self._pending.popleft()
            self._place(head, reward)
        if self.full:
            self._pending.clear()

    def _place(self, state: Any, reward: np.ndarray | None) -> None:
        assert self.clock is not None
        n_prev, n_this = self.clock.add(float(state.sim_time))
        if self.clock.restarted and self.renderer is not None:
            self.renderer.reset_camera()  # a seek or a loop: frame the robots afresh
        if n_prev and self._prev is not None:
            prev_state, prev_reward, prev_frame = self._prev
            if prev_frame is None:
                prev_frame = self._render(prev_state, prev_reward)
            self._append(prev_frame, n_prev)
        frame = self._render(state, reward) if n_this else None
        if n_this:
            self._append(frame, n_this)
        self._prev = (state, reward, frame)

    def _render(self, state: Any, reward: np.ndarray | None) -> np.ndarray:
        if self.renderer is None:
            from rollout.render import FrameRenderer

            robot = self.robot
            envs = self.envs if self.envs is not None else range(int(robot.num_envs))
            self.renderer = FrameRenderer(
                robot.model,
                model_format=robot.model_format or "mjcf",
                width=self.p.width,
                height=self.p.height,
                preset=self.p.preset,
                envs=envs,
                spacing=float(robot.env_spacing),
                overlay=self.p.overlay,
            )
        shown: float | np.ndarray | None = None
        if reward is not None and reward.size == int(state.num_envs):
            shown = reward if self.envs is None or len(self.envs) > 1 else float(reward[self.envs[0]])
        return self.renderer.render(state, reward=shown)

    def _append(self, frame: np.ndarray, count: int) -> None:
        if self.writer is None:
            p = self.p
            self.writer = VideoWriter(
                p.out,
                fps=self._fps(),
                crf=None if p.quality else p.crf,
                quality=p.quality or None,
                preset=p.encoder_preset,
            )
        for _ in range(count):
            if self.full:
                return
            self.writer.append(frame)

    # ------------------------------------------------------------------ finishing

    def close(self, *, flush: bool = True) -> int:
        """Draw the states still waiting (unless not `flush`), finish the file; returns the frames written.

        Safe to call twice. A video without frames leaves no file behind.
        """
        if self.closed:
            return self.frames
        self.closed = True
        try:
            if flush and self.robot is not None and self._pending:
                self._drain(flush=True)
        finally:
            if self.renderer is not None:
                self.renderer.close()
            if self.writer is not None:
                self.writer.close()
            elif self.p.out:
                _remove_empty(self.p.out)
        return self.frames

    def summary(self) -> str:
        if self.writer is None or self.frames == 0:
            return f"no frames written to {self.p.out}"
        w, h = self.writer.size or (self.p.width, self.p.height)
        what = "camera images" if self.mode == "camera" else "rendered states"
        fps = self.writer.fps
        return f"wrote {self.p.out}: {self.frames} frames ({what}), {w}x{h}, {self.frames / fps:.2f} s at {fps:.4g} fps"


def _remove_empty(path: str) -> None:
    try:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            os.unlink(path)
    except OSError:
        pass


# ----------------------------------------------------------------------------- node


class VideoEncoder(Node):
    def __init__(self, args: list[str] | None = None) -> None:
        super().__init__("video_encoder", params=VideoEncoderParams, cli_args=args)
        p = self.params
        self.video = RolloutVideo(p)
        self._started = time.monotonic()
        self._last_input = self._started
        self._finished_status: Any = None
        self.create_subscription(get_type("rollout_msgs/msg/RobotDescription"), topics.ROBOT, self.on_robot, LATCHED)
        self.create_subscription(get_type("rollout_msgs/msg/State"), topics.STATE, self.on_state, LOSSLESS)
        self.create_subscription(
            get_type("rollout_msgs/msg/RewardTerms"), topics.REWARD_TERMS, self.on_reward, LOSSLESS
        )
        self.create_subscription(
            get_type("rollout_msgs/msg/PlaybackStatus"), topics.PLAYBACK_STATUS, self.on_status, 10
        )
        if p.source != "render":
            self.create_subscription(
                get_type("sensor_msgs/msg/CompressedImage"), topics.CAMERA, self.on_image, LOSSLESS
            )
            self.create_subscription(get_type("sensor_msgs/msg/Image"), CAMERA_RAW, self.on_image, LOSSLESS)
        self.create_timer(0.05, self.tick)
        self.get_logger().info(f"writing {p.out} ({p.width}x{p.height}, {p.preset}, envs {p.envs}, source {p.source})")

    # callbacks: a RolloutError raised here ends the node: `run_node` prints it in one line and exits 2,
    # after `destroy_node` has finished the file with the frames written so far

    def on_robot(self, msg: Any) -> None:
        self._look_for_camera()
        self._guard(self.video.add_robot, msg)

    def on_state(self, msg: Any) -> None:
        self._look_for_camera()
        self._guard(self.video.add_state, msg)

    def _look_for_camera(self) -> None:
        """source auto: note a camera publisher in the graph before the first frame is drawn."""
        v = self.video
        if v.mode is None and not v.camera_announced:
            v.camera_announced = self.count_publishers(topics.CAMERA) + self.count_publishers(CAMERA_RAW) > 0

    def on_reward(self, msg: Any) -> None:
        self._guard(self.video.add_reward, msg)

    def on_image(self, msg: Any) -> None:
        self._guard(self.video.add_image, msg)

    def on_status(self, msg: Any) -> None:
        if msg.finished and self._finished_status is None:
            self._finished_status = msg

    def _guard(self, fn: Any, msg: Any) -> None:
        if self.video.closed:
            return
        self._last_input = time.monotonic()
        try:
            fn(msg)
        except RolloutError:
            self.video.close(flush=False)  # what is written stays playable; nothing more is drawn
            raise

    def tick(self) -> None:
        v, now = self.video, time.monotonic()
        if v.closed:
            return
        if v.robot is None and v.frames == 0 and now - self._started > self.params.robot_timeout:
            v.close(flush=False)
            raise VideoEncoderError(
                f"no robot description on {topics.ROBOT} within {self.params.robot_timeout:g} s; "
                "is a sim or replay running? (-p robot_timeout:=SECONDS waits longer)"
            )
        status = self._finished_status
        if v.full:
            self.finish()
        elif status is not None:
            quiet = now - self._last_input
            caught_up = v.mode == "camera" or (v.last_step is not None and v.last_step >= int(status.last_step))
            if (caught_up and quiet >= _FINISH_QUIET_S) or quiet >= _FINISH_GIVE_UP_S:
                self.finish()

    def finish(self) -> None:
        """Finish the file and end the node: exit 0 with frames, an error without."""
        frames = self.video.close()
        if frames == 0:
            raise VideoEncoderError(f"the stream ended before any frame was drawn; {self.params.out} not written")
        self.get_logger().info(self.video.summary())
        rt.shutdown()

    def destroy_node(self) -> None:
        try:
            if not self.video.closed:  # Ctrl-C, SIGTERM: what was received so far becomes a playable file
                self.video.close()
                self.get_logger().info(self.video.summary())
        finally:
            super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(VideoEncoder, args)


if __name__ == "__main__":
    main()
