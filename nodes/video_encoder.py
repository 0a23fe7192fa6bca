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
Out: the video file. Stopped early (Ctrl-C, SIGTERM, ``max_frames``), the file is still a valid MP4;
on Ctrl-C/SIGTERM the states sent before it and still queued or in flight are drawn first (a second
Ctrl-C skips them).
The frame logic is `rollout.video_stream.RolloutVideo`.

    ros2 run rollout video_encoder --ros-args -p out:=run.mp4 -p preset:=follow -p envs:=0-3
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import rollout.runtime as rt
from rollout import topics
from rollout.codec import get_type
from rollout.errors import ParameterError, RolloutError
from rollout.runtime import LATCHED, LOSSLESS, Node, QoSProfile, Subscription, run_node
from rollout.runtime.params import parse_env_ids
from rollout.video_stream import RolloutVideo, VideoStreamError

CAMERA_RAW = topics.CAMERA.removesuffix("/compressed")  # image_transport: raw next to .../compressed
_FINISH_QUIET_S = 0.2  # after the replay finished: nothing new for this long and the last step is in
_FINISH_GIVE_UP_S = 3.0  # after the replay finished: nothing at all for this long
DRAIN_QUIET = 0.3  # on Ctrl-C/SIGTERM: seconds without input that mean everything in flight has arrived


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
    drain_timeout: float = 8.0
    """On Ctrl-C/SIGTERM: at most this many seconds drawing the states sent before it and still in flight."""


def parse_envs(text: str) -> list[int] | None:
    """'0,3,5-7' -> [0, 3, 5, 6, 7]; 'all' -> None (every env of the recording)."""
    if text.strip().lower() == "all":
        return None
    envs = parse_env_ids(text, "envs")
    if not envs:
        raise ParameterError(f"envs names no env: {text!r}")
    return envs


def open_video(p: VideoEncoderParams) -> RolloutVideo:
    """The video the parameters describe; a one-line `ParameterError`/`VideoError` before a frame is drawn."""
    if not p.out:
        raise ParameterError("no output file: pass -p out:=video.mp4")
    envs = parse_envs(p.envs)
    if not p.robot_timeout > 0:
        raise ParameterError(f"robot_timeout must be positive, got {p.robot_timeout}")
    if not p.drain_timeout >= 0:
        raise ParameterError(f"drain_timeout must be >= 0, got {p.drain_timeout}")
    return RolloutVideo(  # checks the rest, then creates the file
        p.out,
        fps=p.fps,
        width=p.width,
        height=p.height,
        crf=p.crf,
        quality=p.quality,
        encoder_preset=p.encoder_preset,
        preset=p.preset,
        envs=envs,
        overlay=p.overlay,
        source=p.source,
        max_frames=p.max_frames,
    )


class VideoEncoder(Node):
    def __init__(self, args: list[str] | None = None) -> None:
        super().__init__("video_encoder", params=VideoEncoderParams, cli_args=args)
        p = self.params
        self.video = open_video(p)
        self._started = time.monotonic()
        self._last_input = self._started
        self._finished_status: Any = None
        self._stop_ns: int | None = None  # wall time of Ctrl-C/SIGTERM, once it came
        self._past_stop: set[str] = set()  # topics that delivered a message sent after it
        self._inputs: list[Subscription] = []
        self._input("rollout_msgs/msg/RobotDescription", topics.ROBOT, self.on_robot, LATCHED)
        self._input("rollout_msgs/msg/State", topics.STATE, self.on_state, LOSSLESS)
        self._input("rollout_msgs/msg/RewardTerms", topics.REWARD_TERMS, self.video.add_reward, LOSSLESS)
        self.create_subscription(
            get_type("rollout_msgs/msg/PlaybackStatus"), topics.PLAYBACK_STATUS, self.on_status, 10
        )
        if p.source != "render":
            self._input("sensor_msgs/msg/CompressedImage", topics.CAMERA, self.video.add_image, LOSSLESS)
            self._input("sensor_msgs/msg/Image", CAMERA_RAW, self.video.add_image, LOSSLESS)
        self.create_timer(0.05, self.tick)
        self.get_logger().info(f"writing {p.out} ({p.width}x{p.height}, {p.preset}, envs {p.envs}, source {p.source})")

    def _input(self, type_name: str, topic: str, handle: Callable[[Any], None], qos: QoSProfile) -> None:
        def take(msg: Any, info: dict) -> None:  # two parameters: the runtime passes the message info
            self._take(topic, handle, msg, info)

        self._inputs.append(self.create_subscription(get_type(type_name), topic, take, qos))

    # callbacks: a RolloutError raised here ends the node: `run_node` prints it in one line and exits 2,
    # after `destroy_node` has finished the file with the frames written so far

    def _take(self, topic: str, handle: Callable[[Any], None], msg: Any, info: dict) -> None:
        if self.video.closed:
            return
        sent = info.get("source_timestamp") or 0  # the robot (latched) is needed to draw what is queued
        if self._stop_ns is not None and sent > self._stop_ns and topic != topics.ROBOT:
            self._past_stop.add(topic)  # sent after Ctrl-C/SIGTERM (its publisher still runs): not drawn
            return
        self._last_input = time.monotonic()
        try:
            handle(msg)
        except RolloutError:
            self.video.close(flush=False)  # what is written stays playable; nothing more is drawn
            raise

    def on_robot(self, msg: Any) -> None:
        self._look_for_camera()
        self.video.add_robot(msg)

    def on_state(self, msg: Any) -> None:
        self._look_for_camera()
        self.video.add_state(msg)

    def _look_for_camera(self) -> None:
        """source auto: note a camera publisher in the graph before the first frame is drawn."""
        v = self.video
        if v.needs_camera_news:
            v.camera_publisher_seen(self.count_publishers(topics.CAMERA) + self.count_publishers(CAMERA_RAW) > 0)

    def on_status(self, msg: Any) -> None:
        if msg.finished and self._finished_status is None:
            self._finished_status = msg

    def tick(self) -> None:
        v, now = self.video, time.monotonic()
        if v.closed:
            return
        if v.started_without_robot() and now - self._started > self.params.robot_timeout:
            v.close(flush=False)
            raise VideoStreamError(
                f"no robot description on {topics.ROBOT} within {self.params.robot_timeout:g} s; "
                "is a sim or replay running? (-p robot_timeout:=SECONDS waits longer)"
            )
        status = self._finished_status
        if v.full:
            self.finish()
        elif status is not None:
            quiet = now - self._last_input
            if (v.finished_with(status) and quiet >= _FINISH_QUIET_S) or quiet >= _FINISH_GIVE_UP_S:
                self.finish()

    def finish(self) -> None:
        """Finish the file and end the node: exit 0 with frames, an error without."""
        frames = self.video.close()
        if frames == 0:
            raise VideoStreamError(f"the stream ended before any frame was drawn; {self.params.out} not written")
        self.get_logger().info(self.video.summary())
        rt.shutdown()

    def in_flight(self) -> bool:
        """Messages sent before Ctrl-C/SIGTERM still to draw: queued on a topic that has not yet
        delivered a later one, the inputs not quiet for a moment yet, or states waiting for the robot."""
        if self.video.closed:
            return False
        queued = any(s.pending() for s in self._inputs if s.topic_name not in self._past_stop)
        return queued or time.monotonic() - self._last_input < DRAIN_QUIET or self.video.waiting_for_robot

    def _draining(self) -> bool:
        return rt.ok() and self.in_flight()  # not ok: a second Ctrl-C/SIGTERM while draining

    def destroy_node(self) -> None:
        try:
            if not self.video.closed:  # Ctrl-C, SIGTERM: draw what was sent before it, then finish the file
                self._stop_ns = time.time_ns()
                if self.params.drain_timeout > 0 and self.in_flight():
                    self.get_logger().info(
                        f"stopping: drawing the states still in flight (at most {self.params.drain_timeout:g} s)"
                    )
                    self.spin_while(self._draining, self.params.drain_timeout)
            if not self.video.closed:
                self.video.close()
                self.get_logger().info(self.video.summary())
        finally:
            super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(VideoEncoder, args)


if __name__ == "__main__":
    main()
