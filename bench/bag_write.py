"""Bag writer throughput for big messages: our `BagWriter` next to the bare `mcap` library's
Writer and to plain `os.write` calls of the same bytes into a new file (the floor: what the kernel
takes to copy them into the page cache), in the same run.

    python3 bench/bag_write.py                    # 6 MB State messages into /dev/shm
    python3 bench/bag_write.py --dir /tmp --mb 6 --seconds 3

Writes serialized State messages (obs [N, 348] float32, N chosen for --mb) as the recorder does
(bytes in, one `write` per message) for about --seconds per case, and prints MB/s of message
data for `BagWriter` and for `mcap.writer.Writer` with the same chunk size and compression, with
chunk CRCs on (the default) and off, each the median of --repeats runs in alternating order. The
ratio to the mcap Writer is what our rosbag2 layer costs (metadata, splitting, locking, a chunk of
its own for a big message, unbuffered appends for crash safety); the ratio to os.write is what
the records, the user-space copies and the CRC cost on top of the kernel's copy.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def messages(mb: float) -> list[bytes]:
    from rollout.codec import get_type, serialize

    State = get_type("rollout_msgs/msg/State")
    n = max(1, int(mb * 1e6 / (348 * 4)))
    rng = np.random.default_rng(0)
    # observations with the spread of a real policy's inputs: compressible only in part
    base = (rng.normal(size=(n, 348)) * 0.5).astype(np.float16).astype(np.float32)
    return [serialize(State(step=k, num_envs=n, obs_dim=348, obs=base + k)) for k in range(4)]


def ours(path: Path, msgs: list[bytes], compression: str, seconds: float, crc: bool) -> tuple[float, float]:
    from rollout.bag import BagWriter

    t0, n = time.perf_counter(), 0
    with BagWriter(path, compression=compression, chunk_crc=crc) as bag:  # type: ignore[arg-type]
        bag.add_topic("/rollout/state", "rollout_msgs/msg/State")
        while time.perf_counter() - t0 < seconds:
            bag.write("/rollout/state", msgs[n % 4], 1_750_000_000_000_000_000 + n)
            n += 1
    dt = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in path.glob("*.mcap")) if path.is_dir() else path.stat().st_size
    return n * len(msgs[0]) / dt / 1e6, n * len(msgs[0]) / size


def mcap_library(path: Path, msgs: list[bytes], compression: str, seconds: float, crc: bool) -> float:
    from mcap.writer import CompressionType, Writer

    from rollout.codec import schema_text

    kind = {"none": CompressionType.NONE, "lz4": CompressionType.LZ4, "zstd": CompressionType.ZSTD}[compression]
    t0, n = time.perf_counter(), 0
    with open(path, "wb") as f:
        w = Writer(f, chunk_size=768 * 1024, compression=kind, enable_crcs=crc)
        w.start(profile="ros2", library="bench")
        sid = w.register_schema("rollout_msgs/msg/State", "ros2msg", schema_text("rollout_msgs/msg/State").encode())
        cid = w.register_channel("/rollout/state", "cdr", sid)
        while time.perf_counter() - t0 < seconds:
            w.add_message(cid, 1_750_000_000_000_000_000 + n, msgs[n % 4], 1_750_000_000_000_000_000 + n)
            n += 1
        w.finish()
    return n * len(msgs[0]) / (time.perf_counter() - t0) / 1e6


def raw_write(path: Path, msgs: list[bytes], seconds: float, crc: bool) -> float:
    """os.write of the messages into a new file (and their CRC-32 with `crc`), nothing else: the
    kernel's copy alone, the floor of any writer of these bytes that keeps no copy of its own."""
    import os
    import zlib

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        if crc:
            zlib.crc32(msgs[n % 4])
        os.write(fd, msgs[n % 4])
        n += 1
    os.close(fd)
    return n * len(msgs[0]) / (time.perf_counter() - t0) / 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=6.0, help="message size, MB")
    p.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    p.add_argument("--seconds", type=float, default=1.0, help="seconds per run")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    msgs = messages(a.mb)
    work = Path(tempfile.mkdtemp(prefix="bench_bag_write_", dir=a.dir))
    print(f"{len(msgs[0]) / 1e6:.2f} MB State messages into {work}; MB/s and CPU seconds per GB (the steadier\n"
          f"figure on a shared machine), medians of {a.repeats} runs")  # fmt: skip

    def run(case: str, compression: str, crc: bool) -> tuple[float, float]:
        out = work / case
        c0, t0 = time.process_time(), time.perf_counter()
        if case == "ours":
            mb_s = ours(out, msgs, compression, a.seconds, crc)[0]
        elif case == "lib":
            mb_s = mcap_library(out, msgs, compression, a.seconds, crc)
        else:
            mb_s = raw_write(out, msgs, a.seconds, crc)
        cpu_per_gb = (time.process_time() - c0) / (mb_s * (time.perf_counter() - t0) / 1e3)
        shutil.rmtree(out) if out.is_dir() else out.unlink()
        return mb_s, cpu_per_gb

    try:
        run("ours", "none", False)  # first touches of fresh memory
        for compression in ("none", "lz4", "zstd"):
            for crc in (False, True):
                got: dict[str, list[tuple[float, float]]] = {"ours": [], "lib": [], "raw": []}
                for i in range(a.repeats):
                    for case in ("ours", "lib", "raw") if i % 2 == 0 else ("raw", "lib", "ours"):
                        got[case].append(run(case, compression, crc))
                (mb_s, cpu), (lib, lib_cpu), (raw, raw_cpu) = (np.median(got[c], axis=0) for c in ("ours", "lib", "raw"))
                tag = f"{compression:4s} {'chunk CRC' if crc else 'no CRC   '}"
                floor = "os.write + crc32" if crc else "os.write alone  "
                print(f"{tag}  rollout BagWriter {mb_s:5.0f} MB/s {cpu:4.2f} s/GB   mcap Writer {lib:5.0f} {lib_cpu:4.2f} "
                      f"({mb_s / lib:4.2f}x)   {floor} {raw:5.0f} {raw_cpu:4.2f} ({mb_s / raw:4.2f}x)")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
