"""Reading a topic's arrays out of a bag: our reader (memory map + message index, straight into
numpy) next to the `mcap` library's reader + `np.frombuffer`, in the same run.

    python3 bench/bag_read.py                  # 1,000 State messages of ~1 MB in /dev/shm
    python3 bench/bag_read.py --mb 5 --count 200

Why the project keeps its own reader although it writes through `mcap`: `Bag.read_arrays`
decodes each message in place and copies its array once into a preallocated [T, ...] array;
`mcap`'s `make_reader(...).iter_messages()` copies every chunk and every message into fresh
bytes first. Both check chunk CRCs (`validate_crcs=True` for `mcap`; off is its default). Prints MB/s of message data for each (uncompressed and lz4).
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


def write(path: Path, mb: float, count: int, compression: str) -> int:
    from rollout.bag import BagWriter
    from rollout.codec import get_type, serialize

    State = get_type("rollout_msgs/msg/State")
    n = max(1, int(mb * 1e6 / (348 * 4)))
    obs = (np.random.default_rng(0).normal(size=(n, 348)) * 0.5).astype(np.float16).astype(np.float32)
    size = 0
    with BagWriter(path, compression=compression) as w:  # type: ignore[arg-type]
        w.add_topic("/rollout/state", "rollout_msgs/msg/State")
        for k in range(count):
            data = serialize(State(step=k, num_envs=n, obs_dim=348, obs=obs + k))
            w.write("/rollout/state", data, 1_750_000_000_000_000_000 + k)
            size += len(data)
    return size


def ours(path: Path) -> float:
    from rollout.bag import Bag

    t0 = time.perf_counter()
    with Bag(path) as bag:
        obs = bag.read_arrays("/rollout/state", ["obs"])["obs"]
    assert obs.shape[0] > 0
    return time.perf_counter() - t0


def mcap_library(path: Path) -> float:
    from mcap.reader import make_reader

    from rollout.codec import deserialize, get_type

    State = get_type("rollout_msgs/msg/State")
    t0 = time.perf_counter()
    rows = []
    with open(path, "rb") as f:
        for _, _, message in make_reader(f, validate_crcs=True).iter_messages(topics=["/rollout/state"]):
            rows.append(deserialize(message.data, State).obs)
    out = np.stack(rows)
    assert out.shape[0] > 0
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=1.0, help="message size, MB")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_bag_read_", dir=a.dir))
    try:
        for compression in ("none", "lz4"):
            path = work / f"{compression}.mcap"
            size = write(path, a.mb, a.count, compression)
            ours(path)  # page cache warm for both
            t_ours, t_lib = min(ours(path) for _ in range(3)), min(mcap_library(path) for _ in range(3))
            print(f"{compression:4s} {a.count} x {size / a.count / 1e6:.2f} MB: rollout Bag.read_arrays "
                  f"{size / t_ours / 1e6:6.0f} MB/s   mcap reader + frombuffer {size / t_lib / 1e6:6.0f} MB/s   "
                  f"ratio {t_lib / t_ours:4.2f}x")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
