"""to_npz throughput and memory on one bag, next to two independent decoders of the same bag.

    python3 bench/to_npz.py                       # 1,000 steps, 1,024 envs (~2 MB State messages)
    python3 bench/to_npz.py --steps 300 --dir /tmp

The bag is a synthetic rollout as the sim node records it (State with obs 348, joints 21,
14 body poses; Action 17; RewardTerms 4 terms), written once into --dir (default /dev/shm,
so the disk does not set the pace). Figures are MB of bag per second of wall time:

- rollout to_npz: bag -> .npz with the six documented keys, in a fresh process, best of
  --repeat; its peak RSS next to the size of the .npz it wrote;
- rollout reader: `Bag.read_arrays` of State.obs alone (decode + stack, no file written);
- rosbags: `AnyReader` deserializing every message (numpy arrays, its own CDR decoder);
- mcap-ros2-support: `DecoderFactory` decoding the first --baseline-mb of messages (it runs at a
  few MB/s, so the whole bag would take minutes), `pip install mcap-ros2-support`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
from rollout.export import bag_to_npz
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
base = rss()
t = time.perf_counter()
w = bag_to_npz(sys.argv[1], sys.argv[2], overwrite=True)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "base": base}))
"""


def make_bag(path: Path, steps: int, envs: int) -> None:
    from rollout.bag import BagWriter
    from rollout.codec import get_type, serialize

    State = get_type("rollout_msgs/msg/State")
    Action = get_type("rollout_msgs/msg/Action")
    RewardTerms = get_type("rollout_msgs/msg/RewardTerms")
    RewardTerm = get_type("rollout_msgs/msg/RewardTerm")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(4, envs, 348)).astype(np.float32)
    t0 = 1_750_000_000_000_000_000
    names = ["reward_survive", "reward_forward", "reward_ctrl", "reward_contact"]
    with BagWriter(path) as bag:
        for topic, msg_type in (("/rollout/state", State), ("/rollout/action", Action), ("/rollout/reward_terms", RewardTerms)):
            bag.add_topic(topic, msg_type.__msgtype__)
        for s in range(steps):
            ns = t0 + s * 15_000_000
            state = State(
                step=s, sim_time=s * 0.015, num_envs=envs, obs_dim=348, num_joints=21, num_bodies=14,
                obs=obs[s % 4] + s, base_pos=np.zeros((envs, 3), np.float32), base_quat=np.zeros((envs, 4), np.float32),
                joint_pos=np.zeros((envs, 21), np.float32), body_poses=np.zeros((envs, 14, 7), np.float32),
                done=np.zeros(envs, bool), terminated=np.zeros(envs, bool), truncated=np.zeros(envs, bool),
            )  # fmt: skip
            bag.write("/rollout/state", serialize(state), ns)
            act = Action(step=s, sim_time=s * 0.015, num_envs=envs, act_dim=17, action=np.full((envs, 17), s, np.float32))
            bag.write("/rollout/action", serialize(act), ns + 1)
            terms = [RewardTerm(name=n, mean=0.0, value=np.full(envs, k, np.float32)) for k, n in enumerate(names)]
            bag.write("/rollout/reward_terms", serialize(RewardTerms(step=s, terms=terms, total=np.ones(envs, np.float32))), ns + 2)


def bag_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.mcap"))


def ours_to_npz(bag: Path, out: Path, repeat: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = []
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, "-c", CHILD, str(bag), str(out)], capture_output=True, text=True, env=env, check=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["seconds"])
    best["peak"] = max(r["peak"] for r in runs)
    best["first"] = runs[0]["seconds"]
    return best


def ours_reader(bag: Path) -> float:
    from rollout.bag import Bag

    t = time.perf_counter()
    with Bag(bag) as b:
        obs = b.read_arrays("/rollout/state", ["obs"])["obs"]
    dt = time.perf_counter() - t
    del obs
    return dt


def rosbags_decode(bag: Path) -> float:
    from rosbags.highlevel import AnyReader

    t = time.perf_counter()
    with AnyReader([bag]) as reader:
        for conn, _, raw in reader.messages():
            reader.deserialize(raw, conn.msgtype)
    return time.perf_counter() - t


def mcap_ros2_decode(bag: Path, budget: int) -> tuple[float, int]:
    """Seconds to decode messages in file order until `budget` bytes, and the bytes decoded."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    decoded = 0
    f = open(next(bag.glob("*.mcap")), "rb")
    with f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        t = time.perf_counter()
        for _, _, message, _ in reader.iter_decoded_messages():
            decoded += len(message.data)
            if decoded >= budget:
                break
        return time.perf_counter() - t, decoded


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--envs", type=int, default=1024)
    p.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    p.add_argument("--repeat", type=int, default=3, help="to_npz runs (fresh processes); the best is reported")
    p.add_argument("--baseline-mb", type=float, default=24.0, help="MB that mcap-ros2-support decodes")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_to_npz_", dir=a.dir))
    try:
        bag = work / "bag"
        t = time.perf_counter()
        make_bag(bag, a.steps, a.envs)
        size = bag_bytes(bag)
        from rollout.bag import Bag

        with Bag(bag) as b:
            state_mb = size / 1e6 / (3 * a.steps)
            big = len(b.raw("/rollout/state", 0).data) / 1e6
        print(f"bag: {a.steps} steps x {a.envs} envs, {size / 1e9:.2f} GB, State message {big:.2f} MB "
              f"(written in {time.perf_counter() - t:.1f} s) in {work}")  # fmt: skip
        del state_mb
        mb = size / 1e6

        r = ours_to_npz(bag, work / "out.npz", a.repeat)
        out_size = (work / "out.npz").stat().st_size
        ours = mb / r["seconds"]
        print(f"rollout to_npz        {ours:8.0f} MB/s  (best of {a.repeat}: {r['seconds']:.2f} s, first run "
              f"{mb / r['first']:.0f} MB/s; .npz {out_size / 1e9:.2f} GB)")  # fmt: skip
        print(f"  peak RSS            {r['peak'] / 1e9:8.2f} GB = {r['peak'] / out_size:.2f} x output "
              f"(process after imports: {r['base'] / 1e6:.0f} MB)")  # fmt: skip
        (work / "out.npz").unlink()

        dt = ours_reader(bag)
        print(f"rollout read_arrays   {mb / dt:8.0f} MB/s  (State.obs stacked, {dt:.2f} s)")

        dt = rosbags_decode(bag)
        rb = mb / dt
        print(f"rosbags AnyReader     {rb:8.0f} MB/s  (every message deserialized, {dt:.2f} s)")

        try:
            dt, n = mcap_ros2_decode(bag, int(a.baseline_mb * 1e6))
            m2 = n / 1e6 / dt
            print(f"mcap-ros2-support     {m2:8.1f} MB/s  (first {n / 1e6:.0f} MB decoded, {dt:.1f} s)")
        except ImportError:
            m2 = float("nan")
            print("mcap-ros2-support     not installed (pip install mcap-ros2-support)")
        print(f"ratio to_npz / rosbags {ours / rb:.2f}x, to_npz / mcap-ros2-support {ours / m2:.0f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
