"""Recording at scale: the sim node's publish cost per step, and the recorder's sustained MB/s.

    python bench/record.py            # 4096 synthetic envs, obs 376 (~8.6 MB per step), 200 steps per run
    python bench/record.py --quick    # 60 steps per run
    python bench/record.py --disk-dir . --num-envs 1024

1. Publish cost (one process, the sim node's own objects): `Sim` is built from its parameters
   (`env:=synthetic`, `num_envs`), then for each step the bench times `messages.step(rec, stamp)`
   (serializing every topic) and `pub.publish(data)` for each topic (LOSSLESS publishers), next to
   a plain memcpy of the same bytes (`np.copyto` into preallocated buffers). Measured with no
   subscriber (the cost of our code: the target), then with a subscriber process taking every
   topic (raw, LOSSLESS), where publish() waits for the transfer. Medians per step.
2. Recorder (real processes): `python -m rollout.nodes.recorder` (out in tmpfs and on disk,
   compression none and lz4, chunk CRCs on as by default; tmpfs also with them off, same run), then `python -m rollout.nodes.sim --ros-args -p env:=synthetic
   -p num_envs:=N -p steps:=S -p wait_for_subscribers:=1`; after the sim exits the recorder gets
   SIGINT, drains, closes the bag. Figures come from the bag: message bytes over the span of log
   (receive) times, per-topic counts against what the sim published (the same env replayed
   here), gaps in publisher sequence numbers; plus process wall and CPU times.

With `--ros2-ws WS` (a colcon workspace built by .ci/ros2-build, so rollout_msgs has its ROS 2
type support) the same recorder runs are repeated with both nodes on the rclpy backend over Fast
DDS, Jazzy's default (ROLLOUT_BACKEND=rclpy, the workspace sourced, a DDS domain of their own).

Disk bags land in the page cache first (the recorder does not fsync); "sync s" is how long an
`os.sync()` right after the recorder exits takes to put them on the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STEP_TOPICS_NOTE = "state, action, reward_terms, episodes, base_poses"


def sim_args(num_envs: int, steps: int = 0) -> list[str]:
    args = ["--ros-args", "-p", "env:=synthetic", "-p", f"num_envs:={num_envs}"]
    return args + (["-p", f"steps:={steps}", "-p", "wait_for_subscribers:=1"] if steps else [])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- 1. publish cost, in a child process ---------------------------------------------------------


def publish_cost(num_envs: int, steps: int, warmup: int) -> None:
    """Run in its own process: time serialize / publish / memcpy per step; print JSON."""
    from rollout.nodes.sim import Sim

    from rollout import runtime
    from rollout.messages import LATCHED_TOPICS

    runtime.init([], signals=False)
    sim = Sim(sim_args(num_envs))  # the real node, as `rollout run sim` builds it; stepped here by hand
    buffers: dict[str, np.ndarray] = {}

    def run(n: int) -> dict[str, float]:
        keys = ("step", "serialize", "publish", "memcpy", "cpu", "cpu_memcpy", "bytes")
        times: dict[str, list[float]] = {k: [] for k in keys}
        for _ in range(n):
            t0 = time.perf_counter()
            rec = next(sim.steps)
            t1 = time.perf_counter()
            c1 = time.thread_time()
            out = sim.messages.step(rec, time.time_ns())
            t2 = time.perf_counter()
            for topic, data in out:
                sim.pubs[topic].publish(data)
            t3 = time.perf_counter()
            c3 = time.thread_time()
            for topic, data in out:
                src = np.frombuffer(data, np.uint8)
                dst = buffers.get(topic)
                if dst is None or dst.size < src.size:
                    dst = buffers[topic] = np.empty(src.size * 2, np.uint8)
                np.copyto(dst[: src.size], src)
            t4 = time.perf_counter()
            c4 = time.thread_time()
            for key, dt in zip(keys, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, c3 - c1, c4 - c3)):
                times[key].append(dt)
            times["bytes"].append(sum(len(d) for _, d in out))
        return {k: float(np.median(v[warmup:])) for k, v in times.items()}

    alone = run(steps + warmup)
    env = dict(os.environ)
    drain = subprocess.Popen([sys.executable, __file__, "--role", "drain"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        if drain.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
            raise SystemExit("the subscriber process did not start")
        sim.wait_for_takers(1, 20)
        for topic in sim.pubs:
            if topic not in LATCHED_TOPICS and not sim.pubs[topic].get_subscription_count():
                raise SystemExit(f"no subscriber on {topic}")
        taken = run(steps + warmup)
    finally:
        drain.send_signal(signal.SIGINT)
        drain.wait(10)
    sim.destroy_node()
    runtime.close()
    print(json.dumps({"alone": alone, "subscribed": taken}), flush=True)


def drain() -> None:
    """A subscriber on every step topic that drops what it gets (raw, LOSSLESS, as the recorder)."""
    from rollout import runtime
    from rollout.messages import LATCHED_TOPICS, TOPIC_TYPES
    from rollout.runtime import LOSSLESS, Node

    runtime.init([])
    node = Node("bench_drain")
    for topic, type_name in TOPIC_TYPES.items():
        if topic not in LATCHED_TOPICS:
            node.create_subscription(type_name, topic, lambda data: None, LOSSLESS, raw=True)
    print("ready", flush=True)
    runtime.spin()
    node.destroy_node()
    runtime.close()


def run_child(args: list[str], timeout: float) -> dict:
    env = dict(os.environ, ROLLOUT_ROUTER=f"tcp/127.0.0.1:{free_port()}")
    proc = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark process failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- 2. the recorder, sim and recorder as real processes ----------------------------------------


def expected_counts(num_envs: int, steps: int) -> dict[str, int]:
    """Messages per topic the sim node publishes for `steps` steps (the same env and seed here)."""
    from rollout import topics
    from rollout.policy import make_policy
    from rollout.sim import make_env, run_steps

    env = make_env("synthetic", num_envs=num_envs, seed=0)
    info = env.info
    policy = make_policy("zero", obs_dim=info.obs_dim, act_dim=info.act_dim)
    with_ends = sum(1 for rec in run_steps(env, policy, seed=0, steps=steps) if len(rec.episodes))
    per_step = {topics.STATE: steps, topics.ACTION: steps, topics.REWARD_TERMS: steps, topics.BASE_POSES: steps}
    return {topics.ROBOT: 1, **per_step, topics.EPISODES: with_ends}


def wait_for_line(proc: subprocess.Popen[str], stream: str, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    pipe = getattr(proc, stream)
    seen = []
    while time.monotonic() < deadline:
        line = pipe.readline()
        seen.append(line)
        if text in line:
            return line
        if not line and proc.poll() is not None:
            break
    raise SystemExit(f"no {text!r} from the process: {''.join(seen)[-2000:]}")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a running process since its exec (VmHWM), MB; NaN where unknown.
    (`ru_maxrss` from wait4 would count the parent's pages the child had before its exec.)"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def reap(proc: subprocess.Popen[str], timeout: float) -> tuple[int, float]:
    """Wait for `proc`; its exit status and CPU seconds (user + system)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        time.sleep(0.02)
    proc.kill()
    raise SystemExit(f"process {proc.args} did not finish within {timeout:.0f} s")


def ros2_env(ws: Path) -> dict[str, str]:
    """The environment after `. WS/install/setup.bash`, the nodes on the rclpy backend, DDS on this host only."""
    out = subprocess.run(["bash", "-c", f". {ws / 'install' / 'setup.bash'} && env -0"], capture_output=True, check=True)
    env = dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
    env.update(ROLLOUT_BACKEND="rclpy", ROS_DOMAIN_ID=str(200 + os.getpid() % 30), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    return env


def record(bag: Path, compression: str, num_envs: int, steps: int, expected: dict[str, int], crc: bool = True,
           base_env: dict[str, str] | None = None) -> dict:
    from rollout.bag import Bag

    env = dict(base_env or os.environ, ROLLOUT_ROUTER=f"tcp/127.0.0.1:{free_port()}")
    rec_cmd = [sys.executable, "-m", "rollout.nodes.recorder", "--ros-args", "-p", f"out:={bag}", "-p",
               f"compression:={compression}", "-p", f"chunk_crc:={str(crc).lower()}"]  # fmt: skip
    recorder = subprocess.Popen(rec_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(recorder, "stderr", "recording to", 30)
        t0 = time.perf_counter()
        sim = subprocess.Popen([sys.executable, "-m", "rollout.nodes.sim", *sim_args(num_envs, steps)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        wait_for_line(sim, "stderr", "done:", 600)
        code, sim_cpu = reap(sim, 60)
        sim_wall = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"the sim failed ({code}): {sim.stderr.read()[-2000:]}")  # type: ignore[union-attr]
        rec_rss = peak_rss_mb(recorder.pid)  # all but its drain and close
        recorder.send_signal(signal.SIGINT)
        code, rec_cpu = reap(recorder, 120)
        rec_wall = time.perf_counter() - t0
        if code != 0:
            err = recorder.stderr.read()  # type: ignore[union-attr]
            raise SystemExit(f"the recorder failed ({code}): {err[-2000:]}")
    finally:
        if recorder.returncode is None:
            recorder.kill()
            recorder.wait()
    t_sync = time.perf_counter()
    os.sync()
    sync_s = time.perf_counter() - t_sync

    counts: dict[str, int] = {}
    missing_seq = 0
    total_bytes = 0
    first = last = None
    sim_rate = float("nan")
    with Bag(bag) as b:
        file_bytes = b.size
        for topic in b.topics:
            n = b.count(topic)
            counts[topic] = n
            seqs = np.empty(n, np.int64)
            sent = np.empty(n, np.int64)
            for i in range(n):
                m = b.raw(topic, i)
                seqs[i], sent[i] = m.sequence, m.publish_time
                total_bytes += m.data.nbytes
            if topic == "/rollout/state" and n > 1:
                sim_rate = (n - 1) / ((sent[-1] - sent[0]) / 1e9)
            if n:  # the sim's publishers number their messages 1, 2, 3, ...
                missing_seq += int(seqs[0] - 1) + int(np.sum(np.maximum(np.diff(seqs) - 1, 0)))
            if topic != "/rollout/robot" and n:
                times = b.log_times(topic)
                first = times[0] if first is None else min(first, times[0])
                last = times[-1] if last is None else max(last, times[-1])
    span = (last - first) / 1e9 if first is not None else float("nan")
    lost = sum(max(expected.get(t, 0) - counts.get(t, 0), 0) for t in expected)
    return {
        "steps_per_s": sim_rate,
        "mb": total_bytes / 1e6,
        "file_mb": file_bytes / 1e6,
        "mb_s": total_bytes * (steps - 1) / steps / span / 1e6,
        "span": span,
        "sim_wall": sim_wall,
        "sim_cpu": sim_cpu,
        "rec_wall": rec_wall,
        "rec_cpu": rec_cpu,
        "rec_rss": rec_rss,
        "sync_s": sync_s,
        "lost": lost,
        "gaps": missing_seq,
        "counts": counts,
    }


def progress(text: str) -> None:
    if sys.stderr.isatty():
        print(f"\r{text:40s}\r" if not text else f"\r{text}", end="", file=sys.stderr, flush=True)


def fs_type(path: Path) -> str:
    """The file system `path` is on (the longest mount point that contains it): tmpfs, ext4, ..."""
    best, kind = "", "?"
    real = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1]
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, parts[2]
    return kind


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="60 steps per recorder run, fewer timed steps")
    p.add_argument("--num-envs", type=int, default=4096)
    p.add_argument("--steps", type=int, default=None, help="steps per recorder run (default 200, --quick 60)")
    p.add_argument("--tmpfs-dir", default="/dev/shm")
    p.add_argument("--disk-dir", default="/tmp", help="a folder on a real disk")
    p.add_argument("--keep", action="store_true", help="keep the bags")
    p.add_argument("--ros2-ws", type=Path, default=None, help="also record with rclpy + Fast DDS (a colcon workspace)")
    p.add_argument("--role", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.role:
        if a.role[0] == "drain":
            drain()
        else:
            publish_cost(*(int(x) for x in a.role[1:]))
        return

    steps = a.steps or (60 if a.quick else 200)
    timed, warmup = (30, 5) if a.quick else (100, 10)
    n = a.num_envs

    cost = run_child(["--role", "publish-cost", str(n), str(timed), str(warmup)], 600)
    mb = cost["alone"]["bytes"] / 1e6
    print(f"sim node publish cost per step: synthetic env, {n} envs, obs 376, {mb:.2f} MB per step "
          f"({STEP_TOPICS_NOTE}), median of {timed} steps")  # fmt: skip
    print(f"{'':22s}{'memcpy':>9s}{'serialize':>11s}{'publish':>9s}{'ser+pub':>9s}{'× memcpy':>10s}"
          f"{'CPU ×':>7s}{'env step':>10s}")  # fmt: skip
    for key, label in (("alone", "no subscriber"), ("subscribed", "subscriber process")):
        c = cost[key]
        both = c["serialize"] + c["publish"]
        print(f"{label:22s}{c['memcpy'] * 1e3:>7.2f}ms{c['serialize'] * 1e3:>9.2f}ms{c['publish'] * 1e3:>7.2f}ms"
              f"{both * 1e3:>7.2f}ms{both / c['memcpy']:>9.2f}×{c['cpu'] / c['cpu_memcpy']:>6.2f}×"
              f"{c['step'] * 1e3:>8.2f}ms")  # fmt: skip
    print("wall-time medians per step; CPU ×: the sim thread's CPU time in serialize + publish over its CPU time\n"
          "in the memcpy. With a subscriber, publish() of a big message returns only once all but zenoh's few\n"
          "queued 64 KB batches are in the socket, and waits while the subscriber is behind (LOSSLESS: reliable,\n"
          "CongestionControl.BLOCK), so its wall time is the transfer time, not the cost of our code.")
    print()

    expected = expected_counts(n, steps)
    rows = []
    backends = [("", None)] + ([("rclpy ", ros2_env(a.ros2_ws))] if a.ros2_ws else [])
    for where, base in (("tmpfs", Path(a.tmpfs_dir)), ("disk", Path(a.disk_dir))):
        work = Path(tempfile.mkdtemp(prefix="bench_record_", dir=base))
        try:
            # chunk CRCs are on by default; tmpfs also runs without them, in the same run, to show their cost
            cases = [("none", True), ("none", False), ("lz4", True)] if where == "tmpfs" else [("none", True), ("lz4", True)]
            for compression, crc in cases:
                for tag, env in backends:  # the same run on each backend, one after the other
                    progress(f"recording {tag}{where} {compression} ...")
                    bag = work / f"bag_{tag.strip() or 'ours'}_{compression}_{'crc' if crc else 'nocrc'}"
                    r = record(bag, compression, n, steps, expected, crc, env)
                    rows.append((f"{tag}{where} ({fs_type(base)}) {compression}{'' if crc else ' no CRC'}", r))
                    if not a.keep:
                        shutil.rmtree(bag, ignore_errors=True)
        finally:
            if not a.keep:
                shutil.rmtree(work, ignore_errors=True)
            else:
                print(f"bags kept in {work}", file=sys.stderr)
    progress("")

    print(f"recorder: sim node → recorder node (separate processes), {steps} steps × {n} envs, "
          f"{rows[0][1]['mb']:.0f} MB of messages per run")  # fmt: skip
    head = (f"{'':22s}{'MB/s':>7s}{'steps/s':>9s}{'bag MB':>8s}{'in bag':>10s}{'lost':>6s}{'gaps':>6s}"
            f"{'sim s':>7s}{'rec s':>7s}{'rec CPU':>9s}{'rec RSS':>9s}{'sync s':>8s}")  # fmt: skip
    print(head)
    print("-" * len(head))
    want = sum(expected.values())
    for label, r in rows:
        print(f"{label:22s}{r['mb_s']:>7.0f}{r['steps_per_s']:>9.1f}{r['file_mb']:>8.0f}"
              f"{sum(r['counts'].values()):>5d}/{want:<4d}{r['lost']:>6d}{r['gaps']:>6d}"
              f"{r['sim_wall']:>7.1f}{r['rec_wall']:>7.1f}{r['rec_cpu']:>8.1f}s{r['rec_rss']:>7.0f}MB"
              f"{r['sync_s']:>8.2f}")  # fmt: skip
    for label, r in rows:
        short = {t: f"{r['counts'].get(t, 0)}/{k}" for t, k in expected.items() if r["counts"].get(t, 0) != k}
        if short:
            print(f"{label}: topics short of what was published: {short}")
    on = next((r for label, r in rows if label.startswith("tmpfs") and label.endswith(" none")), None)
    off = next((r for label, r in rows if label.endswith("no CRC")), None)
    if on and off:
        print(f"chunk CRCs (the default) on / off, tmpfs, none: {on['mb_s']:.0f} / {off['mb_s']:.0f} MB/s "
              f"({on['mb_s'] / off['mb_s']:.2f}x), recorder CPU {on['rec_cpu']:.1f} / {off['rec_cpu']:.1f} s")  # fmt: skip
    print("MB/s: message bytes over the span of receive (log) times in the bag; steps/s: the sim's rate from\n"
          "publish times; sim s, rec s: process wall times from the sim's start (the recorder's includes its\n"
          "drain and close); rec CPU, rec RSS: the recorder's user+system time and peak memory; lost:\n"
          "published but not in the bag; gaps: holes in publisher sequence numbers. rclpy rows: both nodes on\n"
          "the rclpy backend over Fast DDS (the targets below are for ours).")

    alone, taken = cost["alone"], cost["subscribed"]
    ratio = (alone["serialize"] + alone["publish"]) / alone["memcpy"]
    cpu_ratio = taken["cpu"] / taken["cpu_memcpy"]
    best_tmpfs = max(r["mb_s"] for label, r in rows if label.startswith("tmpfs"))
    drops = sum(r["lost"] + r["gaps"] for label, r in rows if not label.startswith("rclpy"))
    print()
    verdict = "PASS" if ratio <= 3 else "MISS"
    print(f"target: publish cost ≤ 3× memcpy (no subscriber, wall): {ratio:.2f}×  {verdict}"
          f"  (with a subscriber: sim thread CPU {cpu_ratio:.2f}×)")  # fmt: skip
    print(f"target: recorder ≥ 300 MB/s to tmpfs (none or lz4): {best_tmpfs:.0f} MB/s  "
          f"{'PASS' if best_tmpfs >= 300 else 'MISS'}")  # fmt: skip
    print(f"target: zero drops: {drops} lost or missing  {'PASS' if drops == 0 else 'MISS'}")


if __name__ == "__main__":
    main()
