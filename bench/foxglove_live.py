"""Foxglove live while recording: does a Foxglove client on the bridge slow the recorder or cost it a message?

    python bench/foxglove_live.py                      # 1024 synthetic envs (~2.2 MB per step), 300 steps, 5 pairs
    python bench/foxglove_live.py --num-envs 4096 --steps 200 --pairs 2
    python bench/foxglove_live.py --quick              # 256 envs, 200 steps, 2 pairs

After one warm-up recording that is not counted, each pair records the same run twice, in
alternating order (sim node → recorder node, separate processes, bag on tmpfs): once alone, and once with the foxglove_bridge node and a Foxglove
client (tests/js/foxglove_client.mjs, built on @foxglove/ws-protocol, decoding every message it
gets with @foxglove/rosmsg2-serialization) subscribed to /rollout/state. The sim waits for its
takers (the recorder; with the client also the bridge's subscription), so every step is offered
to both. From the bag: the sim's steps/s (publish times), the recorder's MB/s (receive times),
messages lost and sequence gaps; from the client: the states it got and the steps it skipped.
A last run adds a slow client (it stops reading for `--slow-ms` after each message) to show what
such a client sees and that the recording does not notice it.

The machine is shared (2 cores, several people): compare within a pair, not across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import expected_counts, free_port, peak_rss_mb, reap, sim_args, wait_for_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "tests" / "js" / "foxglove_client.mjs"
STATE = "/rollout/state"


def start(module: str, *params: str, env: dict[str, str]) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", f"rollout.nodes.{module}", "--ros-args"]
    for p in params:
        cmd += ["-p", p]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen[str], timeout: float) -> float:
    """SIGINT, wait; the process's CPU seconds."""
    proc.send_signal(signal.SIGINT)
    code, cpu = reap(proc, timeout)
    if code != 0:
        raise SystemExit(f"{proc.args[2]} failed ({code}): {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
    return cpu


def tails(*procs: subprocess.Popen[str] | None) -> str:
    """The last lines of what stopped processes wrote to stderr (for a failure's message)."""
    out = ""
    for p in procs:
        if p is not None:
            p.kill()
            out += f"\n{p.args[:3]}: " + p.communicate(timeout=10)[1][-1500:]
    return out


def record(bag: Path, num_envs: int, steps: int, client: dict | None, max_mb_s: float) -> dict:
    """One recording; with `client` (extra plan options), the bridge and a Foxglove client attached."""
    node = shutil.which("node")
    env = dict(os.environ, ROLLOUT_ROUTER=f"tcp/127.0.0.1:{free_port()}")
    recorder = start("recorder", f"out:={bag}", "compression:=none", env=env)
    bridge = fox = None
    try:
        wait_for_line(recorder, "stderr", "recording to", 30)
        takers = 1
        if client is not None:
            port = free_port()
            bridge = start("foxglove_bridge", f"port:={port}", f"max_mb_s:={max_mb_s}", env=env)
            wait_for_line(bridge, "stderr", "Foxglove WebSocket server on", 30)
            plan = {"url": f"ws://127.0.0.1:{port}", "topics": {STATE: 10**9}, "summary": True, "idleMs": 4000,
                    "timeoutMs": 900_000, **client}  # fmt: skip
            fox = subprocess.Popen([node, str(CLIENT), json.dumps(plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # type: ignore[list-item]
            takers = 2  # the recorder and the bridge, on behalf of its client
        sim_cmd = [sys.executable, "-m", "rollout.nodes.sim", *sim_args(num_envs, steps)[:-1],
                   f"wait_for_subscribers:={takers}", "-p", "wait_timeout:=" + os.environ.get("BENCH_WAIT", "120")]  # fmt: skip
        sim = subprocess.Popen(sim_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_line(sim, "stderr", "done:", 900)
        except SystemExit as e:
            raise SystemExit(f"{e}{tails(fox, bridge)}") from None
        code, sim_cpu = reap(sim, 60)
        if code != 0:
            raise SystemExit(f"the sim failed ({code}): {sim.stderr.read()[-2000:]}")  # type: ignore[union-attr]
        rec_cpu = stop(recorder, 120)
        seen: dict = {}
        bridge_cpu = bridge_rss = client_cpu = float("nan")
        if fox is not None and bridge is not None:
            out, err = fox.stdout.read(), fox.stderr.read()  # type: ignore[union-attr]
            code, client_cpu = reap(fox, 120)
            if code != 0:
                raise SystemExit(f"the Foxglove client failed: {err[-2000:]}")
            seen = json.loads(out)["messages"][STATE]
            bridge_rss = peak_rss_mb(bridge.pid)
            bridge_cpu = stop(bridge, 30)
    finally:
        for p in (fox, bridge, recorder):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    return {**from_bag(bag, num_envs, steps), "sim_cpu": sim_cpu, "rec_cpu": rec_cpu, "bridge_cpu": bridge_cpu,
            "bridge_rss": bridge_rss, "client_cpu": client_cpu, **client_view(seen, steps)}  # fmt: skip


def from_bag(path: Path, num_envs: int, steps: int) -> dict:
    from rollout.bag import Bag

    expected = expected_counts(num_envs, steps)
    with Bag(path) as bag:
        counts = {t: bag.count(t) for t in bag.topics}
        sent = np.array([m.publish_time for m in bag.messages([STATE])], np.int64)
        got = bag.log_times(STATE)
        gaps = 0
        for topic in bag.topics:
            seq = np.array([m.sequence for m in bag.messages([topic])], np.int64)
            gaps += int(seq[0] - 1) + int(np.sum(np.maximum(np.diff(seq) - 1, 0))) if seq.size else 0
        size = sum(m.data.nbytes for m in bag.messages())
    lost = sum(max(n - counts.get(t, 0), 0) for t, n in expected.items())
    short = {t: f"{counts.get(t, 0)}/{n}" for t, n in expected.items() if counts.get(t, 0) < n}
    a, b = sent.size // 10, sent.size - 1 - sent.size // 10  # the middle 80 %: no start-up, no drain
    return {
        "steps_per_s": (b - a) / ((sent[b] - sent[a]) / 1e9),
        "mb_s": size / sent.size * (b - a) / ((got[b] - got[a]) / 1e9) / 1e6,
        "mb": size / 1e6,
        "lost": lost,
        "gaps": gaps,
        "short": short,
    }


def client_view(seen: list[dict], steps: int) -> dict:
    """What the Foxglove client got of /rollout/state: how many, and the steps it never saw."""
    if not seen:
        return {"client_got": 0, "client_skipped": 0, "client_worst_gap": 0, "client_last": -1}
    got = np.array([m["step"] for m in seen], np.int64)
    jumps = np.diff(got) - 1
    return {
        "client_got": int(got.size),
        "client_skipped": int(np.sum(np.maximum(jumps, 0))) + int(got[0]) + int(steps - 1 - got[-1]),
        "client_worst_gap": int(jumps.max()) if jumps.size else 0,
        "client_last": int(got[-1]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, default=None, help="synthetic envs (default 1024, --quick 256)")
    p.add_argument("--steps", type=int, default=None, help="steps per recording (default 300, --quick 200)")
    p.add_argument("--pairs", type=int, default=None, help="paired runs (default 5, --quick 2)")
    p.add_argument("--slow-ms", type=int, default=50, help="the slow client's pause after each message")
    p.add_argument("--max-mb-s", type=float, default=25.0, help="the bridge's max_mb_s")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--tmpfs-dir", default="/dev/shm")
    a = p.parse_args()
    n = a.num_envs or (256 if a.quick else 1024)
    steps = a.steps or (200 if a.quick else 300)
    pairs = a.pairs or (2 if a.quick else 5)
    if shutil.which("node") is None or not (CLIENT.parent / "node_modules" / "@foxglove" / "ws-protocol").is_dir():
        raise SystemExit("bench/foxglove_live.py needs Node.js and `npm ci` in tests/js")

    work = Path(tempfile.mkdtemp(prefix="bench_foxglove_", dir=a.tmpfs_dir))
    rows: list[tuple[str, dict]] = []
    try:
        # the first recording after a while lands on cold tmpfs pages and runs 2-3x slower than the
        # rest: one that is not counted keeps it out of the first pair
        print("warm-up (not counted) ...", file=sys.stderr, flush=True)
        record(work / "bag_warm_up", n, steps, None, a.max_mb_s)
        shutil.rmtree(work / "bag_warm_up", ignore_errors=True)
        for i in range(pairs):
            order = [("alone", None), ("client", {})]
            for label, client in order if i % 2 == 0 else order[::-1]:
                print(f"pair {i + 1}/{pairs}: {label} ...", file=sys.stderr, flush=True)
                r = record(work / f"bag_{i}_{label}", n, steps, client, a.max_mb_s)
                rows.append((f"{i + 1} {label}", r))
                shutil.rmtree(work / f"bag_{i}_{label}", ignore_errors=True)
        print("slow client ...", file=sys.stderr, flush=True)
        slow = record(work / "bag_slow", n, steps, {"slowMs": a.slow_ms}, a.max_mb_s)
        rows.append((f"slow client ({a.slow_ms} ms/msg)", slow))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mb = rows[0][1]["mb"]
    print(f"recording with a Foxglove client: synthetic env, {n} envs, {steps} steps, {mb / steps:.2f} MB per step "
          f"({mb:.0f} MB per run), bag on tmpfs, {pairs} pairs in alternating order, bridge max_mb_s {a.max_mb_s:g}")  # fmt: skip
    head = (f"{'run':24s}{'steps/s':>9s}{'MB/s':>7s}{'lost':>6s}{'gaps':>6s}{'sim CPU':>9s}{'rec CPU':>9s}"
            f"{'bridge CPU':>12s}{'RSS':>7s}{'client CPU':>12s}{'client got':>12s}{'skipped':>9s}{'worst gap':>11s}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for label, r in rows:
        fox = not label.endswith("alone")
        print(f"{label:24s}{r['steps_per_s']:>9.1f}{r['mb_s']:>7.0f}{r['lost']:>6d}{r['gaps']:>6d}"
              f"{r['sim_cpu']:>8.1f}s{r['rec_cpu']:>8.1f}s"
              + (f"{r['bridge_cpu']:>11.1f}s{r['bridge_rss']:>5.0f}MB{r['client_cpu']:>11.1f}s{r['client_got']:>8d}/{steps:<3d}{r['client_skipped']:>9d}{r['client_worst_gap']:>11d}"
                 if fox else ""))  # fmt: skip
    for label, r in rows:
        if r["short"]:
            print(f"{label}: topics short of what was published: {r['short']}")
    ratios = []
    for i in range(pairs):
        alone, with_client = rows[2 * i][1], rows[2 * i + 1][1]
        if rows[2 * i][0].endswith("client"):
            alone, with_client = with_client, alone
        ratios.append(with_client["steps_per_s"] / alone["steps_per_s"])
    drops = sum(r["lost"] + r["gaps"] for _, r in rows)
    ratio = float(np.median(ratios))
    print("steps/s: the sim's rate from publish times in the bag; MB/s: message bytes over receive times (both\n"
          "over the middle 80 % of the steps: no start-up, no drain); lost: published but not in the bag; gaps:\n"
          "holes in publisher sequence numbers; CPU: user + system seconds per process (client: the Node.js\n"
          "Foxglove client decoding every message it gets); RSS: the bridge's peak\n"
          "memory; client got / skipped / worst gap: /rollout/state messages the Foxglove client received, the\n"
          "steps it never saw, and the longest run of steps missed in a row.")
    print()
    print(f"target: steps/s with a client within 10 % of alone (median of pair ratios {', '.join(f'{x:.3f}' for x in ratios)}): "
          f"{ratio:.3f}  {'PASS' if ratio >= 0.9 else 'MISS'}")  # fmt: skip
    print(f"target: nothing lost in the bag (every run, slow client included): {drops} lost or missing  "
          f"{'PASS' if drops == 0 else 'MISS'}")  # fmt: skip


if __name__ == "__main__":
    main()
