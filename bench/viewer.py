"""Web viewer costs: server-side time per drawn state, and replay seek latency on a big bag.

    python3 bench/viewer.py                          # 64 x 20 and 1,024 envs x 24 bodies; a ~1.1 GB bag in /dev/shm
    python3 bench/viewer.py --envs 64 1024 --bodies 20 24 --frames 300 --gb 1.1 --seeks 200

Frame update: `Viewer.on_state` (one batched mesh per body, one instance per env, plus trails,
label, table and plot), with `on_reward_terms`, and Compare's ghost (`on_compare_state`), p50/p99 over --frames states of a 20-body chain
robot, next to the baseline measured in the same run: one viser scene node per body per env, each
moved by its own position/wxyz update. No browser is connected: this is the Python side only.

Seek: a synthetic rollout of at least --gb written to /dev/shm (obs_dim chosen for the size), then
--seeks seeks to random steps. `rollout.replay.Player.seek_step` + `due()` (every message of that
step, as the replay node publishes them, bytes copied out) and, for reference, the bag alone:
`Bag.seek_step` + a raw read of every topic at that step. Then through the graph: the replay node
in its own process, a /replay/seek_step call from this one, timed until the State of that step
has arrived here (service round trip + publishing + zenoh transfer of the ~1 MB state).
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


def chain_robot(bodies: int) -> tuple[str, list[str]]:
    """MJCF of a free root and `bodies - 1` capsule links (`bodies` robot bodies), and their names."""
    links = "".join(
        f'<body name="link{b}" pos="0 0 0.1"><joint type="hinge" axis="0 1 0"/>'
        f'<geom type="capsule" size="0.03" fromto="0 0 0 0 0 0.1"/>'
        for b in range(bodies - 1)
    )
    xml = (
        '<mujoco><worldbody><geom type="plane" size="20 20 0.1"/>'
        f'<body name="root" pos="0 0 1"><freejoint/><geom type="sphere" size="0.1"/>{links}{"</body>" * (bodies - 1)}</body>'
        "</worldbody></mujoco>"
    )
    return xml, ["root"] + [f"link{b}" for b in range(bodies - 1)]


def percentiles(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):6.2f} ms   p99 {np.percentile(a, 99):6.2f} ms"


def bench_frames(envs: int, bodies: int, frames: int, baseline_frames: int) -> None:
    from rollout.codec import get_type
    from rollout.model import env_grid_offsets, xyzw_to_wxyz
    from rollout.viewer import Viewer

    Robot, State = get_type("rollout_msgs/msg/RobotDescription"), get_type("rollout_msgs/msg/State")
    Terms, Term = get_type("rollout_msgs/msg/RewardTerms"), get_type("rollout_msgs/msg/RewardTerm")
    xml, names = chain_robot(bodies)
    term_names = ["reward_survive", "reward_forward", "reward_ctrl", "reward_contact"]
    rng = np.random.default_rng(0)
    # a smooth walk: small steps, so trails and follow see realistic motion
    pos = np.cumsum(rng.normal(scale=0.01, size=(frames + baseline_frames, envs, bodies, 3)), axis=0).astype(np.float32)
    quat = rng.normal(size=(frames + baseline_frames, envs, bodies, 4)).astype(np.float32)
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    poses = np.concatenate([pos, quat], axis=-1)

    def state(k: int) -> object:
        return State(step=k, sim_time=k * 0.015, num_envs=envs, num_bodies=bodies, body_poses=poses[k].ravel())

    def terms(k: int) -> object:
        vals = rng.normal(size=(len(term_names), envs)).astype(np.float32)
        return Terms(step=k, terms=[Term(name=n, value=v) for n, v in zip(term_names, vals)], total=vals.sum(0))

    states = [state(k) for k in range(frames)]
    rewards = [terms(k) for k in range(frames)]
    robot = Robot(model=xml, model_format="mjcf", body_names=names, reward_term_names=term_names, num_envs=envs,
                  env_spacing=2.0, dt=0.015, env="bench")  # fmt: skip

    with Viewer(port=0, max_envs=envs) as v:
        v.on_robot(robot)
        drawn = sum(h is not None for h in v.scene.body_handles)
        state_only, with_terms = [], []
        for k in range(frames):
            t0 = time.perf_counter()
            v.on_state(states[k])
            t1 = time.perf_counter()
            v.on_reward_terms(rewards[k])
            t2 = time.perf_counter()
            state_only.append((t1 - t0) * 1e3)
            with_terms.append((t2 - t0) * 1e3)
        skip = min(10, frames // 10)
        print(
            f"frame update, {envs} envs x {bodies} bodies ({drawn} batched meshes, {envs} instances each), {frames} states:"
        )
        print(f"  viewer on_state                        {percentiles(state_only[skip:])}")
        print(f"  viewer on_state + on_reward_terms      {percentiles(with_terms[skip:])}")
        # Compare: B drawn as a ghost (the same robot, other poses), one more State per step
        v.on_compare_robot(robot)
        ghost = []
        for k in range(frames):
            v.on_state(states[k])
            t0 = time.perf_counter()
            v.on_compare_state(states[frames - 1 - k])
            ghost.append((time.perf_counter() - t0) * 1e3)
        print(f"  compare: B's ghost on_compare_state    {percentiles(ghost[skip:])}")

    if baseline_frames <= 0:
        return
    # baseline: one scene node per body per env
    import trimesh
    import viser

    mesh = trimesh.creation.capsule(height=0.1, radius=0.03)
    offsets = env_grid_offsets(envs, 2.0)
    with _quiet():
        server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    try:
        nodes = [
            [server.scene.add_mesh_simple(f"/robot/{e}/{b}", mesh.vertices, mesh.faces) for b in range(bodies)]
            for e in range(envs)
        ]
        times = []
        for k in range(frames, frames + baseline_frames):
            p = poses[k]
            t0 = time.perf_counter()
            positions = p[:, :, :3] + offsets[:, None]
            wxyzs = xyzw_to_wxyz(p[:, :, 3:])
            for e in range(envs):
                for b in range(bodies):
                    node = nodes[e][b]
                    node.position = positions[e, b]
                    node.wxyz = wxyzs[e, b]
            times.append((time.perf_counter() - t0) * 1e3)
        print(
            f"  baseline: one scene node per body      {percentiles(times[1:] or times)}   ({envs * bodies} nodes, {baseline_frames} states)"
        )
    finally:
        with _quiet():
            server.stop()


def _quiet():
    import contextlib
    import io

    return contextlib.redirect_stdout(io.StringIO())


def bench_seek_graph(path: Path, targets: np.ndarray) -> None:
    """Through the graph: the replay node (its own process) on the bag; from this process a
    /replay/seek_step call until the State of that step has arrived here (what the bridge does)."""
    import os
    import socket
    import subprocess
    import threading

    import rollout.runtime as rt
    from rollout import topics
    from rollout.runtime import Node
    from rollout.runtime.context import get_context

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"tcp/127.0.0.1:{sock.getsockname()[1]}"
    os.environ["ROLLOUT_ROUTER"] = endpoint
    rt.init([], as_router=True, signals=False)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            get_context().executor.spin_once(0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    replay = subprocess.Popen(
        [sys.executable, "-m", "rollout.nodes.replay", "--ros-args", "-p", f"bag:={path}", "-p", "start_paused:=true",
         "-p", "exit_at_end:=false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    node = Node("bench_viewer_seek")
    try:
        arrived: dict[int, float] = {}
        cond = threading.Condition()

        def on_state(msg: object) -> None:
            with cond:
                arrived[int(msg.step)] = time.perf_counter()  # type: ignore[attr-defined]
                cond.notify_all()

        node.create_subscription("rollout_msgs/msg/State", topics.STATE, on_state, 1)
        client = node.create_client("rollout_msgs/srv/SeekStep", "/replay/seek_step")
        if not client.wait_for_service(60.0):
            print(f"  (no replay node: {replay.stderr.read().decode() if replay.poll() is not None else 'timed out'})")
            return
        time.sleep(0.5)
        Req = client.srv_type.Request
        ms = []
        for target in targets.tolist():
            with cond:
                arrived.clear()
            t0 = time.perf_counter()
            client.call(Req(step=target), timeout_sec=10.0)
            with cond:
                if not cond.wait_for(lambda step=target: step in arrived, timeout=10.0):
                    continue
                ms.append((arrived[target] - t0) * 1e3)
        print(
            f"  graph: seek_step call -> State here    {percentiles(ms)}   ({len(ms)}/{len(targets)} seeks, replay node)"
        )
    finally:
        node.destroy_node()
        replay.terminate()
        replay.wait(10)
        stop.set()
        spinner.join()
        rt.close()


def bench_seek(directory: str, gb: float, envs: int, steps: int, seeks: int, e2e: bool = True) -> None:
    from rollout import topics
    from rollout.bag import Bag
    from rollout.export.synthetic import write_synthetic_rollout
    from rollout.replay import Player

    obs_dim = max(1, int(gb * 1e9 / steps / envs / 4) + 1)
    work = Path(tempfile.mkdtemp(prefix="bench_viewer_", dir=directory))
    try:
        path = work / "big.mcap"
        t0 = time.perf_counter()
        write_synthetic_rollout(
            path, steps=steps, num_envs=envs, obs_dim=obs_dim, num_bodies=20, num_joints=17, act_dim=17
        )
        size = path.stat().st_size
        print(f"seek: {size / 1e9:.2f} GB bag ({steps} steps x {envs} envs, obs_dim {obs_dim}: "
              f"{size / steps / 1e6:.2f} MB per step), written in {time.perf_counter() - t0:.1f} s to {directory}")  # fmt: skip
        rng = np.random.default_rng(1)
        targets = rng.integers(0, steps, size=seeks)
        with Bag(path) as bag:
            t0 = time.perf_counter()
            player = Player(bag, start_paused=True)
            print(f"  Player opened (index of every topic)   {(time.perf_counter() - t0) * 1e3:6.1f} ms")
            player_ms, copy_ms, nbytes = [], [], 0
            for s in targets:
                t0 = time.perf_counter()
                got = player.seek_step(int(s))
                items = player.due()
                t1 = time.perf_counter()
                nbytes = sum(len(bytes(i.data)) for i in items)  # what publishing copies out
                t2 = time.perf_counter()
                assert got == s, (got, s)
                player_ms.append((t1 - t0) * 1e3)
                copy_ms.append((t2 - t0) * 1e3)
            print(f"  Player.seek_step + due()               {percentiles(player_ms)}")
            print(f"  ... + bytes of every message ({nbytes / 1e6:.1f} MB) {percentiles(copy_ms)}")
            names = [t for t in (topics.STATE, "/rollout/action", "/rollout/reward_terms") if t in bag.topics]
            raw_ms = []
            for s in targets:
                t0 = time.perf_counter()
                for name in names:
                    i = bag.seek_step(name, int(s))
                    bytes(bag.raw(name, i).data)
                raw_ms.append((time.perf_counter() - t0) * 1e3)
            print(f"  Bag.seek_step + raw read, {len(names)} topics    {percentiles(raw_ms)}")
        if e2e:
            bench_seek_graph(path, targets[: max(1, seeks // 4)])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", type=int, nargs="+", default=[64, 1024], help="one frame benchmark per size")
    p.add_argument("--bodies", type=int, nargs="+", default=[20, 24], help="bodies of each --envs size")
    p.add_argument("--frames", type=int, default=300, help="states drawn by the viewer")
    p.add_argument(
        "--baseline-frames", type=int, default=20, help="states drawn by the one-node-per-body baseline (0: skip it)"
    )
    p.add_argument("--gb", type=float, default=1.1, help="bag size for the seek benchmark (0: skip it)")
    p.add_argument("--steps", type=int, default=1000, help="control steps in that bag")
    p.add_argument("--seeks", type=int, default=200)
    p.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    p.add_argument("--no-graph", action="store_true", help="skip the seek through the replay node")
    a = p.parse_args()
    if len(a.bodies) != len(a.envs):
        p.error(f"--bodies needs one count per --envs size ({len(a.envs)}), got {len(a.bodies)}")
    for i, (envs, bodies) in enumerate(zip(a.envs, a.bodies)):  # the baseline at the first size only
        bench_frames(envs, bodies, a.frames, a.baseline_frames if i == 0 else 0)
    if a.gb > 0:
        bench_seek(a.dir, a.gb, a.envs[0], a.steps, a.seeks, e2e=not a.no_graph)


if __name__ == "__main__":
    main()
