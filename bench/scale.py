"""4,096 envs end to end: sim -> recorder + live viewer + video at once, per node cost and memory.

    python bench/scale.py            # 4096 envs, 300 steps, two configurations
    python bench/scale.py --quick    # 100 steps
    python bench/scale.py --num-envs 1024 --env synthetic:humanoid
    python bench/scale.py --profile-recorder   # where the recorder's time goes (cProfile, its spinning thread)

Runs `rollout launch record.launch.py env:=synthetic:humanoid num_envs:=N steps:=S` (made-up
data at Humanoid's sizes, obs 376, 13 bodies: ~8.6 MB per step at N=4096, drawn as Humanoid's
bodies) twice in the same run: the recorder alone (the baseline), then recorder + viewer
(`view:=true`) + video (`video:=...`). The bag goes to tmpfs. While the graph runs, every node's
/proc is sampled: CPU seconds (user + system) and peak RSS (VmHWM). Reported per configuration:
steps/s and MB/s of the sim (bag bytes over the sim's stepping time), messages lost (recorder
counts and sequence gaps against the steps run; frames in the video), per node CPU ms per step
and peak RSS, and a memcpy of one step's bytes measured here as the floor. The machine is shared
and has 2 cores: compare figures within one run, not across runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_sample(pid: int) -> tuple[float, float] | None:
    """(CPU seconds so far, peak RSS MB) of a live process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        hwm = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM"))
        return cpu, int(hwm.split()[1]) / 1024
    except (OSError, StopIteration, IndexError, ValueError):
        return None


class Sampler(threading.Thread):
    """Samples each node's /proc every 50 ms; keeps the last sample (CPU and VmHWM only grow)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.pids: dict[str, int] = {}
        self.last: dict[str, tuple[float, float]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for name, pid in list(self.pids.items()):
                s = proc_sample(pid)
                if s is not None:
                    self.last[name] = s
            time.sleep(0.05)


def run_graph(env: str, num_envs: int, steps: int, *, with_takers: bool, work: Path) -> dict:
    bag = work / f"bag_{'all' if with_takers else 'rec'}"
    video = work / "v.mp4"
    args = [sys.executable, "-m", "rollout.cli", "launch", "record.launch.py", f"env:={env}", f"num_envs:={num_envs}",
            f"steps:={steps}", f"out:={bag}", "realtime:=false"]  # fmt: skip
    if with_takers:
        args += ["view:=true", "keep_view:=false", f"port:={free_port()}", f"video:={video}"]
    environ = dict(os.environ, ROLLOUT_ROUTER=f"tcp/127.0.0.1:{free_port()}", PYTHONUNBUFFERED="1")
    sampler = Sampler()
    sampler.start()
    lines: list[str] = []
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ)
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
        m = re.search(r"started (\w+) \(pid (\d+)\)", line)
        if m:
            sampler.pids[m.group(1)] = int(m.group(2))
    proc.wait()
    sampler.stop.set()
    sampler.join()
    text = "\n".join(lines)
    if proc.returncode != 0:
        raise SystemExit(f"the launch failed:\n{text[-4000:]}")
    done = re.search(r"done: (\d+) steps x (\d+) envs in ([\d.]+) s", text)
    assert done, text
    ran, seconds = int(done.group(1)), float(done.group(3))
    counts = {t: int(n) for t, n in re.findall(r"\[recorder\]\s+(/\S+): (\d+) messages", text)}
    step_topics = ("/rollout/state", "/rollout/action", "/rollout/reward_terms", "/rollout/base_poses")
    lost = sum(ran - counts.get(t, 0) for t in step_topics)
    gaps = "no gaps" not in text
    frames = None
    if with_takers:
        m = re.search(r"wrote \S+: (\d+) frames", text)
        frames = int(m.group(1)) if m else 0
    size = sum(f.stat().st_size for f in bag.rglob("*.mcap"))
    shutil.rmtree(bag, ignore_errors=True)
    video.unlink(missing_ok=True)
    return {"steps": ran, "seconds": seconds, "bytes": size, "lost": lost, "gaps": gaps, "frames": frames,
            "nodes": dict(sampler.last)}  # fmt: skip


def profile_recorder(num_envs: int, steps: int, work: Path) -> None:
    """Run the recorder under cProfile while a synthetic sim publishes `steps` steps; print its top calls."""
    import pstats

    environ = dict(os.environ, ROLLOUT_ROUTER=f"tcp/127.0.0.1:{free_port()}")
    out, bag = work / "recorder.prof", work / "bag_prof"
    rec = subprocess.Popen([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "rollout.nodes.recorder",
                            "--ros-args", "-p", f"out:={bag}"], env=environ, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)  # fmt: skip
    subprocess.run([sys.executable, "-m", "rollout.nodes.sim", "--ros-args", "-p", "env:=synthetic",
                    "-p", f"num_envs:={num_envs}", "-p", f"steps:={steps}", "-p", "wait_for_subscribers:=1"],
                   env=environ, check=True, capture_output=True)  # fmt: skip
    time.sleep(1.0)
    rec.send_signal(2)
    rec.communicate(timeout=120)
    size = sum(f.stat().st_size for f in bag.rglob("*.mcap"))
    step = size // max(steps, 1)
    floor = memcpy_ms(step)
    print(f"recorder profile: {steps} steps, {size / 1e6:.0f} MB written; memcpy of a step's {step / 1e6:.1f} MB "
          f"here: {floor:.2f} ms ({step / floor / 1e6:.1f} GB/s), so {steps * floor / 1e3:.2f} s per pass over the data")
    print("top calls by own time:")
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(8)


def memcpy_ms(nbytes: int) -> float:
    src = np.random.default_rng(0).integers(0, 255, nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def report(name: str, r: dict, floor_ms: float) -> None:
    step_mb = r["bytes"] / max(r["steps"], 1) / 1e6
    print(f"\n{name}: {r['steps']} steps in {r['seconds']:.1f} s = {r['steps'] / r['seconds']:.1f} steps/s, "
          f"{r['bytes'] / r['seconds'] / 1e6:.0f} MB/s ({step_mb:.2f} MB/step); lost {r['lost']}, "
          f"gaps {'yes' if r['gaps'] else 'none'}" + (f", video frames {r['frames']}/{r['steps']}" if r["frames"] is not None else ""))  # fmt: skip
    print(f"  {'node':<14}{'CPU ms/step':>12}{'x memcpy':>10}{'peak RSS MB':>13}")
    for node, (cpu, rss) in sorted(r["nodes"].items()):
        per = cpu / max(r["steps"], 1) * 1e3
        print(f"  {node:<14}{per:>12.1f}{per / floor_ms:>9.1f}x{rss:>13.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="100 steps")
    p.add_argument("--num-envs", type=int, default=4096)
    p.add_argument("--steps", type=int, default=None, help="default 300 (--quick 100)")
    p.add_argument("--env", default="synthetic:humanoid")
    p.add_argument("--tmpfs-dir", default="/dev/shm")
    p.add_argument("--profile-recorder", action="store_true", help="only profile the recorder")
    a = p.parse_args()
    steps = a.steps or (100 if a.quick else 300)
    work = Path(tempfile.mkdtemp(prefix="rollout_scale_", dir=a.tmpfs_dir if os.path.isdir(a.tmpfs_dir) else None))
    try:
        if a.profile_recorder:
            return profile_recorder(a.num_envs, steps, work)
        print(f"{a.num_envs} envs, env {a.env}, {steps} steps, bag in {work} ({os.cpu_count()} cores, shared: noisy)")
        alone = run_graph(a.env, a.num_envs, steps, with_takers=False, work=work)
        full = run_graph(a.env, a.num_envs, steps, with_takers=True, work=work)
        floor = memcpy_ms(max(alone["bytes"] // max(alone["steps"], 1), 1))
        print(f"floor: memcpy of one step's bytes {floor:.2f} ms")
        report("baseline: sim -> recorder", alone, floor)
        report("sim -> recorder + viewer + video", full, floor)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
