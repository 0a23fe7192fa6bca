"""Stream RGB frames into an MP4 with ffmpeg (the binary bundled with imageio-ffmpeg); never hold the video.

    from rollout.video import VideoWriter, save_video
    with VideoWriter("run.mp4", fps=30) as video:      # size from the first frame
        for frame in frames:                            # [H, W, 3] uint8
            video.append(frame)
    save_video(frames, "run.mp4", fps=30)              # the same for any iterable

A file stopped mid-run is still playable:
- ffmpeg runs in its own session, so Ctrl-C or a signal to our process group does not reach it;
  when our process ends in any way, even SIGKILL, ffmpeg reads end-of-file on its stdin and
  finishes the file itself.
- ``crash_safe`` (default, MP4/MOV): ffmpeg writes a fragmented MP4 (a fragment each second,
  flushed as written), so even when ffmpeg is killed too, the file plays up to the last second.
  `close` then remuxes it (stream copy, milliseconds) into an ordinary MP4 with the index at the
  front (``+faststart``), the form every player and web page handles best.
- `close` is safe to call twice and from a signal handler that interrupts `append`: the close is
  then finished by `append` once the frame being written is complete.
"""

from __future__ import annotations

import fcntl
import math
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from rollout.errors import RolloutError

_F_SETPIPE_SZ = 1031  # Linux: let a whole frame sit in the pipe so rendering and encoding overlap
_FRAGMENTED = (".mp4", ".m4v", ".mov")


class VideoError(RolloutError):
    """An output file that cannot be written, frames of the wrong shape, or ffmpeg failing."""


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg (or the one it is told to use)."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:  # pragma: no cover - the wheel ships a binary
        raise VideoError(f"no ffmpeg found: {' '.join(str(exc).split())}") from None


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """`path` as a Path after making sure a file can be created there (creates it empty).

    Raises `VideoError` with one line when the folder is missing, the path is a folder, the
    file has no extension (ffmpeg picks the container from it), or writing is not permitted.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise VideoError(f"cannot write the video to {p}: it is a folder; give a file name such as {p / 'rollout.mp4'}")
    if not p.suffix:
        raise VideoError(f"cannot write the video to {p}: no file extension; use .mp4")
    if not p.parent.exists():
        raise VideoError(f"cannot write the video to {p}: folder {p.parent} does not exist")
    if not p.parent.is_dir():
        raise VideoError(f"cannot write the video to {p}: {p.parent} is not a folder")
    try:
        with open(p, "wb"):
            pass
    except OSError as exc:
        raise VideoError(f"cannot write the video to {p}: {exc.strerror or exc}") from None
    return p


def _fps_arg(fps: float | Fraction) -> str:
    if not (isinstance(fps, (int, float, Fraction)) and math.isfinite(float(fps)) and float(fps) > 0):
        raise VideoError(f"fps must be a positive number, got {fps!r}")
    return str(Fraction(fps).limit_denominator(100_000))


class VideoWriter:
    """Writes frames [H, W, 3] uint8 (RGB) into a video file as they come.

    path: output file; its extension picks the container (.mp4 recommended).
    fps: frames per second of the video (any positive number, e.g. 1 / dt).
    size: (width, height); None takes it from the first frame. Odd sizes are padded with black to
      even ones, which yuv420p needs.
    codec, pix_fmt: ffmpeg encoder and output pixel format (libx264 + yuv420p plays everywhere).
    crf: constant rate factor 0-51 (lower is better; libx264's default is 23).
    quality: alternatively 1-10 as in imageio (10 is best, lossless); mapped to crf for libx264/5.
    preset: libx264/libx265 speed preset; ultrafast encodes faster than veryfast, files ~4x larger.
    crash_safe: write fragmented MP4 while running, remux to a plain MP4 on close (see module doc).
    The output path is checked (and created empty) at construction: an unwritable path fails
    there, in one line, before any frame is rendered.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float | Fraction = 30.0,
        size: tuple[int, int] | None = None,
        codec: str = "libx264",
        pix_fmt: str = "yuv420p",
        crf: int | None = None,
        quality: float | None = None,
        preset: str | None = "veryfast",
        crash_safe: bool = True,
    ) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = True  # until fully set up: __del__ of a half-built writer has nothing to finish
        self._fps = _fps_arg(fps)
        self.fps = float(fps)
        if crf is not None and quality is not None:
            raise VideoError("give crf or quality, not both")
        if crf is not None and not (isinstance(crf, (int, np.integer)) and 0 <= crf <= 51):
            raise VideoError(f"crf must be an integer from 0 to 51, got {crf!r}")
        if quality is not None and not (isinstance(quality, (int, float)) and 1 <= quality <= 10):
            raise VideoError(f"quality must be a number from 1 to 10, got {quality!r}")
        if size is not None:
            size = (int(size[0]), int(size[1]))
            if size[0] <= 0 or size[1] <= 0:
                raise VideoError(f"video size must be positive, got {size[0]}x{size[1]}")
        self.path = check_output_path(path)
        self.size: tuple[int, int] | None = size
        self.codec, self.pix_fmt, self.preset = codec, pix_fmt, preset
        self._crf = crf if crf is not None else (None if quality is None else int((1 - quality / 10) * 51))
        self._quality = quality
        self.crash_safe = crash_safe and self.path.suffix.lower() in _FRAGMENTED
        self.frames_written = 0
        self._frame_bytes = 0
        self._lock = threading.Lock()
        self._append_thread: int | None = None
        self._close_requested = False
        self._broken: str | None = None
        self._log = tempfile.TemporaryFile()  # ffmpeg's stderr; a file, so ffmpeg never gets SIGPIPE
        self._closed = False
        if size is not None:
            self._start()

    # ------------------------------------------------------------------ ffmpeg

    def _command(self) -> list[str]:
        assert self.size is not None
        w, h = self.size
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", self._fps, "-i", "pipe:0"]
        cmd += ["-an", "-c:v", self.codec, "-pix_fmt", self.pix_fmt]
        x26x = self.codec in ("libx264", "libx265")
        if x26x and self.preset:
            cmd += ["-preset", self.preset]
        if self._crf is not None and (x26x or self._quality is None):
            cmd += ["-crf", str(self._crf)]
        elif self._quality is not None:  # other encoders: imageio's mapping to -q:v
            cmd += ["-q:v", str(int((1 - self._quality / 10) * 30) + 1)]
        if self.pix_fmt.startswith(("yuv420", "nv12")) and (w % 2 or h % 2):
            cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        if self.crash_safe:
            cmd += ["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1000000"]
            cmd += ["-flush_packets", "1"]
        cmd.append(str(self.path))
        return cmd

    def _start(self) -> None:
        assert self.size is not None
        w, h = self.size
        self._frame_bytes = w * h * 3
        try:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
                start_new_session=True,  # Ctrl-C and group signals must not kill the encoder mid-file
            )
        except OSError as exc:
            raise VideoError(f"cannot start ffmpeg: {exc.strerror or exc}") from None
        assert self._proc.stdin is not None
        try:
            fcntl.fcntl(self._proc.stdin.fileno(), _F_SETPIPE_SZ, min(self._frame_bytes, _pipe_max()))
        except OSError:
            pass  # a smaller pipe only costs some overlap

    def _ffmpeg_message(self) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        # "[vost#0:0 @ 0x55d0] Unknown encoder 'x'" -> "Unknown encoder 'x'": the first line is the cause
        lines = [re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", ln.strip()) for ln in text.splitlines() if ln.strip()]
        if not lines:
            return "no message"
        return lines[0] if len(lines) == 1 else f"{lines[0]} ({lines[-1]})"

    # ------------------------------------------------------------------ frames

    def append(self, frame: np.ndarray) -> None:
        """Write one frame [H, W, 3] uint8 (blocks while ffmpeg is a frame behind)."""
        if self._closed:
            raise VideoError(f"cannot append to {self.path}: the video is closed")
        if self._broken:
            raise VideoError(self._broken)
        arr = np.asarray(frame)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise VideoError(f"video frames must be [height, width, 3] uint8 RGB, got {arr.dtype} {tuple(arr.shape)}")
        h, w = arr.shape[:2]
        with self._lock:
            self._append_thread = threading.get_ident()  # from here a signal handler's close() is deferred
            try:
                if self.size is None:
                    self.size = (w, h)
                if self._proc is None:
                    self._start()
                if (w, h) != self.size:
                    raise VideoError(
                        f"frame {self.frames_written} is {w}x{h} but the video is {self.size[0]}x{self.size[1]}"
                    )
                self._write(arr)
            finally:
                self._append_thread = None
                if self._close_requested:
                    self._finish()

    def _write(self, arr: np.ndarray) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        data = memoryview(np.ascontiguousarray(arr)).cast("B")
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except BrokenPipeError:
            self._broken = f"ffmpeg stopped while writing {self.path}: {self._wait_message()}"
            raise VideoError(self._broken) from None
        except BaseException:
            # interrupted mid-frame (Ctrl-C): ffmpeg drops the partial frame at end of file, but the
            # stream is out of step for further frames, so only closing is left
            self._broken = f"cannot append to {self.path}: an earlier write was interrupted"
            raise
        self.frames_written += 1

    def _wait_message(self) -> str:
        assert self._proc is not None
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return self._ffmpeg_message()

    # ------------------------------------------------------------------ finishing

    def close(self) -> None:
        """Finish the file (valid MP4 once this returns); safe to call twice, and from a signal handler.

        A video with no frames is not a video: the empty file is removed.
        Raises `VideoError` when ffmpeg reports a failure.
        """
        if self._closed:
            return
        if self._append_thread == threading.get_ident():
            # a signal handler interrupted append() in this thread: let append finish its frame, then close
            self._close_requested = True
            return
        with self._lock:
            self._finish()

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                assert proc.stdin is not None
                try:
                    proc.stdin.close()  # end of file: ffmpeg flushes the encoder and writes the index
                except BrokenPipeError:
                    pass
                rc = proc.wait()
                if rc != 0:
                    if self._broken:  # already reported by append()
                        return
                    raise VideoError(f"ffmpeg failed to write {self.path}: {self._ffmpeg_message()}")
            if self.frames_written == 0:
                self.path.unlink(missing_ok=True)
                return
            if self.crash_safe:
                self._remux()
        finally:
            self._log.close()

    def _remux(self) -> None:
        """Fragmented MP4 -> plain MP4 with the index first; the fragmented file stays if this fails."""
        tmp = self.path.with_name(f".{self.path.stem}.remux{self.path.suffix}")
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(self.path)]
        cmd += ["-c", "copy", "-movflags", "+faststart", str(tmp)]
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, start_new_session=True)
        if done.returncode == 0:
            os.replace(tmp, self.path)
        else:
            tmp.unlink(missing_ok=True)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pid(self) -> int | None:
        """Process id of the running ffmpeg (None before the first frame and after close)."""
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # forgotten close(): still end the file properly
        try:
            self.close()
        except Exception:
            pass


def _pipe_max() -> int:
    try:
        return int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        return 1 << 20


def save_video(frames: Iterable[np.ndarray], path: str | os.PathLike[str], fps: float = 30.0, **kwargs: Any) -> int:
    """Stream `frames` ([H, W, 3] uint8 each, any iterable, consumed once) into `path`.

    Keyword arguments are those of `VideoWriter`. Returns the number of frames written;
    raises `VideoError` when there are none.
    """
    with VideoWriter(path, fps=fps, **kwargs) as video:
        for frame in frames:
            video.append(frame)
        count = video.frames_written
    if count == 0:
        raise VideoError(f"no frames to write to {path}")
    return count
