"""Simulation throughput: the embedded humanoid vs Gymnasium's SyncVectorEnv, policy in the loop.

    python3 bench/sim.py                 # N = 16 and 64, zero and MLP policies, + engine table
    python3 bench/sim.py --num-envs 64 --seconds 3 --no-engines

Prints env-steps/s (one env advanced by one control step = one env-step) for
  - rollout: `run_steps(make_env("humanoid"), policy)`, poses included, as the sim node runs it;
  - gymnasium: `SyncVectorEnv` of `gym.make("Humanoid-v5")` (same-step autoreset), same policy;
and the ratio between them, measured in the same run. Policies: zero, and an MLP
348 -> 256 -> 256 -> 17 exported as .pt2 and loaded with `make_policy` (one torch thread).

The engine table compares ways of stepping N Humanoid-v5 physics states (no policy) over
blocks of 20 control steps from a reset (the humanoid falls in about that time, so every
engine steps comparable states): an MjData list stepped serially; the same list on a
thread pool; `mujoco.rollout` on threads; `mujoco.batch.Batch` on threads, with and without
the per-env `mj_rnePostConstraint` that Humanoid-v5's contact observations need.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Env-steps per second of `fn` (which returns the env-steps it did), run for ~`seconds`."""
    fn()  # warm up
    done, t0 = 0, time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return done / elapsed


def mlp_policy(tmp: str) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    from rollout.policy import MLPConfig, build_mlp, export_policy, make_policy

    torch.manual_seed(0)
    cfg = MLPConfig(obs_dim=348, act_dim=17, hidden=(256, 256), activation="elu")
    module = build_mlp(cfg)
    with torch.no_grad():  # small outputs, so the humanoid behaves as under a trained policy's noise
        module.net[-2].weight.mul_(0.01)
    path = export_policy(module, os.path.join(tmp, "mlp.pt2"), obs_dim=348)
    return make_policy(str(path), obs_dim=348, act_dim=17, threads=1)


def ours(n: int, policy: Callable[[np.ndarray], np.ndarray], seconds: float) -> float:
    from rollout.sim import make_env, run_steps

    env = make_env("humanoid", num_envs=n, seed=0)
    records = run_steps(env, policy, seed=0)

    def block() -> int:
        for _ in range(10):
            next(records)
        return 10 * n

    return rate(block, seconds)


def gymnasium_sync(n: int, policy: Callable[[np.ndarray], np.ndarray], seconds: float) -> float:
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    env = SyncVectorEnv([lambda: gym.make("Humanoid-v5") for _ in range(n)], autoreset_mode=AutoresetMode.SAME_STEP)
    obs, _ = env.reset(seed=0)
    state = {"obs": obs}

    def block() -> int:
        for _ in range(10):
            state["obs"], *_ = env.step(policy(state["obs"].astype(np.float32)))
        return 10 * n

    return rate(block, seconds)


def engines(n: int, seconds: float, threads: int) -> dict[str, float]:
    """Physics-only stepping of n humanoids, 20-step blocks from a reset, per method."""
    import mujoco
    import mujoco.batch
    import mujoco.rollout

    from rollout.sim.humanoid import gymnasium_asset

    m = mujoco.MjModel.from_xml_path(str(gymnasium_asset("humanoid.xml")))
    rng = np.random.default_rng(0)
    qpos0 = m.qpos0 + rng.uniform(-0.01, 0.01, (n, m.nq))
    qvel0 = rng.uniform(-0.01, 0.01, (n, m.nv))
    steps, skip = 20, 5
    out: dict[str, float] = {}

    datas = [mujoco.MjData(m) for _ in range(n)]

    def reset_list() -> None:
        for i, d in enumerate(datas):
            mujoco.mj_resetData(m, d)
            d.qpos[:], d.qvel[:] = qpos0[i], qvel0[i]
            mujoco.mj_forward(m, d)

    def step_some(ds: list) -> None:
        for d in ds:
            mujoco.mj_step(m, d, nstep=skip)
            mujoco.mj_rnePostConstraint(m, d)

    def serial() -> int:
        reset_list()
        for _ in range(steps):
            step_some(datas)
        return steps * n

    out["MjData list, serial"] = rate(serial, seconds)

    pool = ThreadPoolExecutor(threads)
    chunks = [datas[i::threads] for i in range(threads)]

    def pooled() -> int:
        reset_list()
        for _ in range(steps):
            list(pool.map(step_some, chunks))
        return steps * n

    out[f"MjData list, {threads} Python threads"] = rate(pooled, seconds)
    pool.shutdown()

    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    reset_list()
    init = np.empty((n, mujoco.mj_stateSize(m, spec)))
    for i, d in enumerate(datas):
        mujoco.mj_getState(m, d, init[i], spec)
    rdatas = [mujoco.MjData(m) for _ in range(threads)]
    ctrl = np.zeros((n, steps * skip, m.nu))

    def rolled() -> int:
        mujoco.rollout.rollout(m, rdatas, init, ctrl, nstep=steps * skip)
        return steps * n

    out[f"mujoco.rollout, {threads} threads (no cfrc_ext)"] = rate(rolled, seconds)

    for persistent, label in ((False, "no cfrc_ext"), (True, "+ per-env mj_rnePostConstraint (used)")):
        b = mujoco.batch.Batch(m, n, nthread=threads, persistent=persistent)
        scratch = mujoco.MjData(m)
        qpos, qvel = b.bind("qpos"), b.bind("qvel")

        def batched(b: mujoco.batch.Batch = b, persistent: bool = persistent) -> int:
            b.reset(stage=mujoco.mjtStage.mjSTAGE_NONE)
            qpos[:], qvel[:] = qpos0, qvel0
            b.forward()
            for _ in range(steps):
                b.step(nstep=skip)
                if persistent:
                    for i in range(n):
                        b.get_data(i, scratch)
                        mujoco.mj_rnePostConstraint(m, scratch)
                        mujoco.mj_kinematics(m, scratch)
            return steps * n

        out[f"mujoco.batch.Batch, {threads} threads, {label}"] = rate(batched, seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--no-engines", action="store_true", help="skip the physics-engine table")
    args = parser.parse_args()

    from rollout.policy import make_policy

    threads = os.cpu_count() or 1
    print(f"CPU cores: {threads}; torch threads: 1; MuJoCo batch threads: {threads}")
    with tempfile.TemporaryDirectory() as tmp:
        policies = {"zero": make_policy("zero", obs_dim=348, act_dim=17), "MLP 256x256 .pt2": mlp_policy(tmp)}
        print(f"\n{'N':>4}  {'policy':<18} {'rollout':>12} {'gymnasium':>12} {'ratio':>7}   (env-steps/s)")
        for n in args.num_envs:
            for name, policy in policies.items():
                a = ours(n, policy, args.seconds)
                b = gymnasium_sync(n, policy, args.seconds)
                print(f"{n:>4}  {name:<18} {a:>12,.0f} {b:>12,.0f} {a / b:>6.2f}x", flush=True)
    if args.no_engines:
        return
    print("\nPhysics only, Humanoid-v5 stepping (env-steps/s), 20-step blocks from a reset:")
    for n in args.num_envs:
        results = engines(n, args.seconds, threads)
        base = results["MjData list, serial"]
        for label, value in results.items():
            print(f"  N={n:<3} {label:<62} {value:>9,.0f}  {value / base:>5.2f}x")


if __name__ == "__main__":
    main()
