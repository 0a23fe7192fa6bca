"""Turn a stream of rollout messages into one video file, frame by frame; no middleware.

Fed the robot description, states, reward terms and (optionally) camera images as they arrive,
`RolloutVideo` draws each control step with `FrameRenderer` (or takes the sim's own camera
frames) and streams it to a `VideoWriter`. The video_encoder node is a thin layer over it.

    video = RolloutVideo("run.mp4", preset="follow", envs=[0, 1, 2, 3])
    video.add_robot(robot)                 # rollout_msgs/RobotDescription
    for state, reward in messages:
        video.add_state(state)             # rollout_msgs/State: one frame per step (or resampled to fps)
        video.add_reward(reward)           # rollout_msgs/RewardTerms: burnt into the frame
    video.close()                          # draws what still waits, finishes the MP4
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np

from rollout.cameras import parse_preset
from rollout.errors import ParameterError, RolloutError
from rollout.video import VideoWriter, check_output_path

_HOLD_FOR_CAMERA = 8  # auto: states held while a camera publisher is known but has not sent a frame
_HOLD_FOR_REWARD = 8  # overlay: states held while their reward has not arrived (a sim without rewards)
_HOLD_WITHOUT_ROBOT = 32  # states kept while the robot description has not arrived yet


class VideoStreamError(RolloutError):
    """A stream that cannot become a video (no robot description, envs not in it, no frames)."""


# ----------------------------------------------------------------------------- pure functions


def env_ranges(envs: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5': env numbers written the way ``envs:=`` takes them."""
    parts: list[str] = []
    start = prev = None
    for e in [*envs, None]:
        if prev is not None and e == prev + 1:
            prev = e
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = e
    return ",".join(parts)


def decode_image(msg: Any) -> np.ndarray:
    """A sensor_msgs/CompressedImage (jpeg, png...) or Image (rgb8, bgr8, rgba8, bgra8, mono8) as RGB [H, W, 3]."""
    if hasattr(msg, "format"):  # CompressedImage
        import io

        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(np.asarray(msg.data, np.uint8).tobytes())) as img:
                return np.asarray(img.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise VideoStreamError(f"a camera image ({msg.format or 'no format'}) does not decode: {exc}") from None
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1, "8uc3": 3}
    enc = str(msg.encoding).lower()
    if enc not in channels:
        raise VideoStreamError(
            f"camera images in encoding {msg.encoding!r} are not supported; use rgb8, bgr8, rgba8, bgra8 or mono8"
        )
    h, w, c = int(msg.height), int(msg.width), channels[enc]
    data = np.asarray(msg.data, np.uint8)
    step = int(msg.step) or w * c
    if h * step > data.size or w * c > step:
        raise VideoStreamError(f"a camera image says {w}x{h} {enc} (step {step}) but holds {data.size} bytes")
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


# ----------------------------------------------------------------------------- the video


class RolloutVideo:
    """Turns robot description, states, rewards and camera images into frames of one video file.

    Streams: a frame goes to ffmpeg as soon as it is drawn; at most a few states wait (for their
    reward, or for a camera frame under ``source="auto"``). The output path is checked (and
    created empty) at construction, so a bad option or path fails before anything is drawn.

    out: video file (.mp4), replaced when it exists.
    fps: frames per second; 0: one frame per control step at 1/dt; other rates resample by sim
      time (nearest step).
    width, height: frame size in pixels.
    crf: libx264 constant rate factor 0-51; quality: 1-10 as in imageio instead of crf (0: use crf).
    encoder_preset: libx264 speed preset.
    preset: camera (top, side, front or follow).
    envs: envs drawn on one grid; None: every env of the rollout.
    overlay: burn the step and the total reward into each frame.
    source: render: draw the states; camera: encode camera images; auto: the camera's once a
      camera frame arrives before the first drawn frame (see `camera_announced`).
    max_frames: stop taking frames after this many (see `full`); 0: no limit.
    """

    def __init__(
        self,
        out: str,
        *,
        fps: float = 0.0,
        width: int = 640,
        height: int = 480,
        crf: int = 23,
        quality: float = 0.0,
        encoder_preset: str = "veryfast",
        preset: str = "side",
        envs: Sequence[int] | None = (0,),
        overlay: bool = True,
        source: Literal["auto", "render", "camera"] = "auto",
        max_frames: int = 0,
    ) -> None:
        parse_preset(preset)
        if not (math.isfinite(fps) and fps >= 0):
            raise ParameterError(f"fps must be 0 (one frame per step) or a positive number, got {fps}")
        if width <= 0 or height <= 0:
            raise ParameterError(f"width and height must be positive, got {width}x{height}")
        if not 0 <= crf <= 51:
            raise ParameterError(f"crf must be an integer from 0 to 51, got {crf}")
        if quality != 0 and not 1 <= quality <= 10:
            raise ParameterError(f"quality must be 0 (use crf) or from 1 to 10, got {quality}")
        if max_frames < 0:
            raise ParameterError(f"max_frames must be >= 0, got {max_frames}")
        if envs is not None and not envs:
            raise ParameterError("envs names no env")
        check_output_path(out)  # creates it empty: an unwritable path fails now, in one line
        self.out = out
        self.fps = fps
        self.width = width
        self.height = height
        self.crf = crf
        self.quality = quality
        self.encoder_preset = encoder_preset
        self.preset = preset
        self.envs: list[int] | None = None if envs is None else [int(e) for e in envs]
        self.overlay = overlay
        self.max_frames = max_frames
        self.mode: str | None = None if source == "auto" else source
        self.camera_announced = False
        """source auto: a camera publisher is known, so the first states wait a little for its frames."""
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
        return self.max_frames > 0 and self.frames >= self.max_frames

    @property
    def waiting_for_robot(self) -> bool:
        """States arrived, but not yet the robot description needed to draw them."""
        return self.robot is None and bool(self._pending)

    @property
    def needs_camera_news(self) -> bool:
        """source auto, nothing chosen yet: whether a camera publisher exists still matters."""
        return self.mode is None and not self.camera_announced

    def camera_publisher_seen(self, seen: bool) -> None:
        """source auto: a camera publisher is (or is not) in the graph, so its frames may come."""
        if self.needs_camera_news:
            self.camera_announced = bool(seen)

    def started_without_robot(self) -> bool:
        """Nothing drawn and no robot description yet."""
        return self.robot is None and self.frames == 0

    def finished_with(self, status: Any) -> bool:
        """Whether every frame of a replay that reported `status` (a finished PlaybackStatus) is in:
        camera images come as they are, drawn states once the last step has been drawn."""
        return self.mode == "camera" or (self.last_step is not None and self.last_step >= int(status.last_step))

    def add_robot(self, robot: Any) -> None:
        if self.robot is not None:
            return  # republished (latched, after a seek): the first one stays
        if self.envs is not None and max(self.envs) >= int(robot.num_envs):
            raise VideoStreamError(
                f"env {max(self.envs)} is not in this rollout: it has {robot.num_envs} envs"
                f" (envs:={env_ranges(self.envs)})"
            )
        if not robot.dt > 0 and self.fps == 0:
            raise VideoStreamError("the robot description has no dt; pass -p fps:=30")
        self.robot = robot
        self.clock = FrameClock(self._period(), max_gap=max(1.0, 10 * float(robot.dt or 0)))
        self._drain()

    def _period(self) -> float | None:
        """None: one frame per step; else seconds of sim time per frame."""
        dt = float(self.robot.dt) if self.robot is not None else 0.0
        if self.fps == 0 or (dt > 0 and abs(self.fps * dt - 1) < 1e-3):
            return None
        return 1.0 / self.fps

    def _fps(self) -> float:
        if self.fps > 0:
            return self.fps
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
        frame = fit_frame(decode_image(msg), self.width, self.height)
        if self.overlay and self.last_step is not None:
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
            waiting = self.overlay and not (passed or flush or len(self._pending) > _HOLD_FOR_REWARD)
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
                width=self.width,
                height=self.height,
                preset=self.preset,
                envs=envs,
                spacing=float(robot.env_spacing),
                overlay=self.overlay,
            )
        shown: float | np.ndarray | None = None
        if reward is not None and reward.size == int(state.num_envs):
            shown = reward if self.envs is None or len(self.envs) > 1 else float(reward[self.envs[0]])
        return self.renderer.render(state, reward=shown)

    def _append(self, frame: np.ndarray, count: int) -> None:
        if self.writer is None:
            self.writer = VideoWriter(
                self.out,
                fps=self._fps(),
                crf=None if self.quality else self.crf,
                quality=self.quality or None,
                preset=self.encoder_preset,
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
            elif self.out:
                _remove_empty(self.out)
        return self.frames

    def summary(self) -> str:
        if self.writer is None or self.frames == 0:
            return f"no frames written to {self.out}"
        w, h = self.writer.size or (self.width, self.height)
        what = "camera images" if self.mode == "camera" else "rendered states"
        fps = self.writer.fps
        return f"wrote {self.out}: {self.frames} frames ({what}), {w}x{h}, {self.frames / fps:.2f} s at {fps:.4g} fps"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(flush=exc[0] is None)


def _remove_empty(path: str) -> None:
    try:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            os.unlink(path)
    except OSError:
        pass
