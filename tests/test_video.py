"""Videos come out as valid MP4s with the frames, duration and size asked for, also when the writer is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from rollout.errors import RolloutError
from rollout.video import VideoError, VideoWriter, save_video

REPO = Path(__file__).resolve().parents[1]


def pattern(i: int, w: int = 160, h: int = 120) -> np.ndarray:
    """A frame with a bar that moves and a shade that changes with i."""
    frame = np.full((h, w, 3), (i * 3) % 200, np.uint8)
    x = (i * 4) % (w - 16)
    frame[:, x : x + 16] = (255, 200, 40)
    return frame


def probe(path: Path) -> tuple[int, float]:
    """(frames, seconds) as ffmpeg decodes them."""
    return imageio_ffmpeg.count_frames_and_secs(str(path))


def decode(path: Path) -> tuple[dict, list[np.ndarray]]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader]
    return meta, frames


def test_mp4_has_the_frames_duration_and_size_asked_for(tmp_path):
    path = tmp_path / "bars.mp4"
    with VideoWriter(path, fps=15) as video:
        for i in range(45):
            video.append(pattern(i))
        assert video.frames_written == 45
    assert probe(path) == (45, 3.0)
    meta, frames = decode(path)
    assert meta["size"] == (160, 120) and meta["fps"] == 15
    assert len(frames) == 45
    # lossy, but each decoded frame is the one written, in order
    for i in (0, 22, 44):
        assert np.abs(frames[i].astype(int) - pattern(i).astype(int)).mean() < 6


def test_finished_file_is_a_plain_mp4_with_the_index_first(tmp_path):
    path = tmp_path / "plain.mp4"
    save_video((pattern(i) for i in range(30)), path, fps=30)
    head = path.read_bytes()[:64]
    assert head[4:8] == b"ftyp"
    first_box = int.from_bytes(head[0:4], "big")
    assert head[first_box + 4 : first_box + 8] == b"moov"  # +faststart: streams in a browser
    assert b"moof" not in path.read_bytes()  # the crash-safe fragments were remuxed away


def test_save_video_streams_frames_instead_of_collecting_them(tmp_path, monkeypatch):
    events: list[str] = []
    real_append = VideoWriter.append

    def append(self, frame):
        events.append("append")
        real_append(self, frame)

    monkeypatch.setattr(VideoWriter, "append", append)

    def frames():
        for i in range(5):
            events.append("make")
            yield pattern(i)

    assert save_video(frames(), tmp_path / "s.mp4", fps=10) == 5
    assert events == ["make", "append"] * 5


def test_odd_sizes_are_padded_to_even(tmp_path):
    path = tmp_path / "odd.mp4"
    save_video((pattern(i, 161, 121) for i in range(10)), path, fps=10, crf=28)
    meta, frames = decode(path)
    assert meta["size"] == (162, 122) and len(frames) == 10


def test_quality_settings_change_the_file(tmp_path):
    frames = [pattern(i) + np.random.default_rng(i).integers(0, 40, (120, 160, 3), dtype=np.uint8) for i in range(20)]
    best, worst = tmp_path / "best.mp4", tmp_path / "worst.mp4"
    save_video(frames, best, fps=20, crf=5)
    save_video(frames, worst, fps=20, quality=1)
    assert best.stat().st_size > 3 * worst.stat().st_size


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("missing/out.mp4", "does not exist"),
        ("a_file/out.mp4", "is not a folder"),
        (".", "is a folder"),
        ("no_extension", "no file extension"),
        ("readonly/out.mp4", "ermission denied"),
    ],
)
def test_unwritable_output_fails_in_one_line_before_any_frame(tmp_path, where, expected):
    (tmp_path / "a_file").write_text("")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    target = tmp_path / where
    if where.startswith("readonly") and os.access(readonly, os.W_OK):  # root ignores the mode bits
        target = Path("/sys/rollout_video_test.mp4")  # but not in sysfs
        try:
            target.open("wb").close()
        except OSError:
            pass
        else:
            target.unlink()
            pytest.skip("no unwritable folder available to this user")
    with pytest.raises(VideoError) as err:
        VideoWriter(target, fps=30)
    msg = str(err.value)
    assert isinstance(err.value, RolloutError) and "\n" not in msg and expected in msg


def test_bad_frames_and_settings_fail_in_one_line(tmp_path):
    with VideoWriter(tmp_path / "v.mp4", fps=10) as video:
        video.append(pattern(0))
        with pytest.raises(VideoError, match="frame 1 is 80x60 but the video is 160x120"):
            video.append(pattern(1, 80, 60))
        with pytest.raises(VideoError, match=r"\[height, width, 3\] uint8"):
            video.append(pattern(1).astype(np.float32))
        video.append(pattern(1))
    assert probe(tmp_path / "v.mp4")[0] == 2
    for kwargs, match in [({"fps": 0}, "fps"), ({"crf": 60}, "crf"), ({"crf": 20, "quality": 5}, "not both")]:
        with pytest.raises(VideoError, match=match):
            VideoWriter(tmp_path / "w.mp4", **kwargs)
    with pytest.raises(VideoError, match="no frames"):
        save_video([], tmp_path / "none.mp4")


def test_unknown_codec_reports_ffmpegs_reason(tmp_path):
    with pytest.raises(VideoError) as err:
        with VideoWriter(tmp_path / "x.mp4", fps=10, codec="nosuchcodec") as video:
            for i in range(50):
                video.append(pattern(i))
    assert "nosuchcodec" in str(err.value).lower() and "\n" not in str(err.value)


def test_close_twice_and_an_empty_writer_leaves_no_file(tmp_path):
    video = VideoWriter(tmp_path / "empty.mp4", fps=10)
    assert (tmp_path / "empty.mp4").exists()  # created up front: the path check is real
    video.close()
    video.close()
    assert not (tmp_path / "empty.mp4").exists()
    with pytest.raises(VideoError, match="closed"):
        video.append(pattern(0))


# ----------------------------------------------------------------------------- stopped mid-run

CHILD = textwrap.dedent(
    """
    import signal, sys, time
    import numpy as np
    from rollout.video import VideoWriter

    path, mode = sys.argv[1], sys.argv[2]
    video = VideoWriter(path, fps=25)
    if mode == "exit":      # what a node does: turn SIGTERM into a normal exit
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    if mode == "handler":   # close straight from the signal handler, even in the middle of append()
        signal.signal(signal.SIGTERM, lambda *a: (video.close(), sys.exit(0)))
    try:
        with video:
            i = 0
            while True:
                frame = np.full((120, 160, 3), (i * 3) % 200, np.uint8)
                frame[:, (i * 4) % 144 : (i * 4) % 144 + 16] = 255
                video.append(frame)
                i += 1
                if i == 100:
                    print(video.pid, flush=True)
                time.sleep(0.002)
    finally:
        print("written", video.frames_written, flush=True)
    """
)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # exited, maybe waiting for a reaper


def run_and_stop(tmp_path: Path, mode: str, sig: signal.Signals, *, kill_ffmpeg: bool = False) -> tuple[Path, str]:
    path = tmp_path / f"{mode}_{sig.name}.mp4"
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), mode], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    ffmpeg_pid = int(child.stdout.readline())
    time.sleep(0.2)
    if kill_ffmpeg:
        os.kill(ffmpeg_pid, signal.SIGKILL)
    child.send_signal(sig)
    out = child.stdout.read()
    child.wait(timeout=20)
    deadline = time.monotonic() + 20
    while not _gone(ffmpeg_pid) and time.monotonic() < deadline:  # an orphaned ffmpeg finishing the file
        time.sleep(0.02)
    return path, out


@pytest.mark.parametrize(
    ("mode", "sig"),
    [
        ("plain", signal.SIGKILL),  # hard kill: ffmpeg sees end of file and finishes by itself
        ("plain", signal.SIGTERM),  # Python's default SIGTERM: dies at once, like SIGKILL
        ("plain", signal.SIGINT),  # Ctrl-C: KeyboardInterrupt, the with-block closes the file
        ("exit", signal.SIGTERM),
        ("handler", signal.SIGTERM),
    ],
)
def test_writer_stopped_mid_run_leaves_a_playable_file(tmp_path, mode, sig):
    path, out = run_and_stop(tmp_path, mode, sig)
    frames, seconds = probe(path)
    assert frames >= 100 and seconds == pytest.approx(frames / 25, abs=0.1)
    if "written" in out:  # the process lived to report: every frame it wrote is in the file
        written = int(out.split("written")[1])
        assert written <= frames <= written + 1  # +1: Ctrl-C after a frame reached ffmpeg, before it was counted
        assert b"moof" not in path.read_bytes()  # closed properly: remuxed to a plain MP4
    meta, decoded = decode(path)
    assert meta["size"] == (160, 120) and decoded[-1].std() > 10


def test_file_survives_even_when_ffmpeg_is_killed_too(tmp_path):
    path, _ = run_and_stop(tmp_path, "plain", signal.SIGKILL, kill_ffmpeg=True)
    frames, _ = probe(path)  # fragments are flushed every second: at most ~1 s is lost
    assert frames >= 100 - 25 - 15


def test_close_from_a_signal_handler_during_append_finishes_after_the_frame(tmp_path):
    path = tmp_path / "reentrant.mp4"
    video = VideoWriter(path, fps=10)
    video.append(pattern(0))
    pipe = video._proc.stdin  # the handler fires in the middle of this frame's write

    class Interrupted:
        def write(self, data):
            half = len(data) // 2
            pipe.write(data[:half])
            video.close()  # what a SIGTERM handler calls
            assert not video.closed  # deferred: closing now would cut the frame in half
            pipe.write(data[half:])

        def flush(self):
            pipe.flush()

        def close(self):
            pipe.close()

    video._proc.stdin = Interrupted()
    video.append(pattern(1))
    assert video.closed and video.frames_written == 2
    assert probe(path) == (2, 0.2)
