"""Train the demo policy: Augmented Random Search (ARS V2-t) with a linear policy on our humanoid.

    python train/train_humanoid.py --minutes 80 --out train/out   # then copy train/out/best.pt2 to rollout/data/humanoid_walk.pt2

The shipped policy is best.pt2 of such a run (iteration 465, 60.7 min, 4.36 M env-steps).

ARS (Mania et al. 2018) needs no gradients: each iteration tries `directions` random
perturbations of the weight matrix, each with + and - sign, one whole episode apiece, and
moves the weights towards the better signs of the `top` best directions. Observations are
normalised by a running mean/std that is frozen during an iteration. The policy reads only the
first `--features` entries of the observation (qpos[2:] and qvel): 17 x 45 weights instead of
17 x 348, and random search needs samples in proportion to the parameters it searches.

It is vectorized on one MuJoCo batch (rollout.sim, one native thread): every env carries its
own perturbed weights, so one batched step evaluates up to `envs` perturbations at once. An
env that finishes an episode takes the next pending perturbation; when none is left it runs
the unperturbed policy, and those episodes are what the log reports.

Training subtracts `--alive-shift` from the reward of each healthy step (ARS subtracts all
of Humanoid's 5; half of it keeps staying up worth learning while walking stays worth more
than standing still). The exported `.pt2` is obs -> clip((obs - mean) / std) @ W.T clipped to
the action range, with a dynamic batch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

OBS_CLIP = 10.0


class Normaliser:
    """Running mean/std of observations; `frozen()` gives the pair used during an iteration."""

    def __init__(self, dim: int) -> None:
        self.n = 0
        self.total = np.zeros(dim)
        self.total_sq = np.zeros(dim)

    def add(self, obs: np.ndarray) -> None:
        self.n += obs.shape[0]
        self.total += obs.sum(axis=0)
        self.total_sq += np.square(obs, dtype=np.float64).sum(axis=0)

    def frozen(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            return np.zeros_like(self.total), np.ones_like(self.total)
        mean = self.total / self.n
        var = np.maximum(self.total_sq / self.n - mean**2, 0.0)
        # near-constant inputs (e.g. contact forces of bodies that never touch): keep them at ~0
        return mean, np.where(var > 1e-6, np.sqrt(var), 1.0)


def export(
    weights: np.ndarray, mean: np.ndarray, std: np.ndarray, low: np.ndarray, high: np.ndarray, path: Path, obs_dim: int
) -> Path:
    """Write the linear policy as a torch.export .pt2 that rollout.policy.make_policy loads; it
    takes the whole observation and gives the entries past the features zero weight."""
    import torch

    k = weights.shape[1]
    weights = np.pad(weights, ((0, 0), (0, obs_dim - k)))
    mean, std = np.pad(mean, (0, obs_dim - k)), np.pad(std, (0, obs_dim - k), constant_values=1.0)

    from rollout.policy import export_policy

    class LinearPolicy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
            self.register_buffer("weight", torch.tensor(weights, dtype=torch.float32))
            self.register_buffer("low", torch.tensor(low, dtype=torch.float32))
            self.register_buffer("high", torch.tensor(high, dtype=torch.float32))

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            x = ((obs - self.mean) / self.std).clamp(-OBS_CLIP, OBS_CLIP)
            return torch.maximum(torch.minimum(x @ self.weight.T, self.high), self.low)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.pt2")
    export_policy(LinearPolicy(), tmp, obs_dim=weights.shape[1])
    tmp.replace(path)  # a reader never sees half a file
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=85.0, help="wall-clock budget (default 85)")
    p.add_argument("--out", type=Path, default=Path("train/out"), help="folder for checkpoints and the log")
    p.add_argument("--envs", type=int, default=32, help="parallel envs in the batch (default 32)")
    p.add_argument("--directions", type=int, default=32, help="perturbations per iteration (default 32)")
    p.add_argument("--top", type=int, default=16, help="best directions used in the update (default 16)")
    p.add_argument("--step-size", type=float, default=0.02)
    p.add_argument("--noise", type=float, default=0.02)
    p.add_argument("--features", type=int, default=45,
                   help="observation entries the policy reads, from the start (default 45: qpos[2:] and qvel)")
    p.add_argument("--alive-shift", type=float, default=2.5, help="subtracted from each healthy step's reward")
    p.add_argument("--checkpoint-every", type=float, default=300.0, help="seconds between exports (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", type=Path, default=None, help="state .npz written by an earlier run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from rollout.sim import make_env

    env = make_env("humanoid", num_envs=args.envs, seed=args.seed, threads=1)
    info = env.info
    obs_dim, act_dim = info.obs_dim, info.act_dim
    k = min(args.features, obs_dim)  # fewer parameters: random search needs fewer samples
    low, high = np.asarray(info.action_low, np.float32), np.asarray(info.action_high, np.float32)
    rng = np.random.default_rng(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "train_log.jsonl").open("a")

    weights = np.zeros((act_dim, k))
    norm = Normaliser(k)
    iteration, env_steps, elapsed_before = 0, 0, 0.0
    if args.resume is not None:
        state = np.load(args.resume)
        weights = state["weights"]
        norm.n, norm.total, norm.total_sq = int(state["n"]), state["total"], state["total_sq"]
        iteration, env_steps, elapsed_before = int(state["iteration"]), int(state["env_steps"]), float(state["elapsed"])

    start = time.monotonic()
    deadline = start + args.minutes * 60.0
    next_checkpoint = start + args.checkpoint_every
    best_score = -np.inf

    obs = env.reset(args.seed)
    n = args.envs
    # per env: which task it runs (-1: the unperturbed policy), its episode return/length/distance
    task = np.full(n, -1)
    ep_return = np.zeros(n)
    ep_len = np.zeros(n, np.int64)
    ep_forward = np.zeros(n)
    fresh = np.ones(n, bool)  # at the first step of an episode: may take a task
    eval_eps: list[tuple[float, int, float]] = []  # unperturbed episodes: (return, length, mean speed)

    def save_state(path: Path, elapsed: float) -> None:
        np.savez(path, weights=weights, n=norm.n, total=norm.total, total_sq=norm.total_sq,
                 iteration=iteration, env_steps=env_steps, elapsed=elapsed)

    while time.monotonic() < deadline:
        mean, std = norm.frozen()
        deltas = rng.standard_normal((args.directions, act_dim, k))
        # tasks 2k and 2k+1: direction k with + and - sign
        pending = list(range(2 * args.directions))
        results = np.full(2 * args.directions, np.nan)
        task_eps: list[tuple[float, int]] = []
        per_env_w = np.repeat(weights[None], n, axis=0)
        while np.isnan(results).any() and time.monotonic() < deadline:
            for i in np.flatnonzero(fresh):
                if pending:
                    t = pending.pop(0)
                    task[i] = t
                    sign = 1.0 if t % 2 == 0 else -1.0
                    per_env_w[i] = weights + sign * args.noise * deltas[t // 2]
                else:
                    task[i] = -1
                    per_env_w[i] = weights
                fresh[i] = False
            feats = obs[:, :k]
            norm.add(feats)
            x = np.clip((feats - mean) / std, -OBS_CLIP, OBS_CLIP)
            act = np.clip(np.einsum("eao,eo->ea", per_env_w, x), low, high)
            s = env.step(act.astype(np.float32))
            env_steps += n
            healthy = s.terms[0] > 0
            ep_return += s.reward - args.alive_shift * healthy
            ep_len += 1
            ep_forward += s.terms[1]
            obs = s.obs
            for i in np.flatnonzero(s.terminated | s.truncated):
                speed = ep_forward[i] / 1.25 / ep_len[i]  # reward_forward = 1.25 * x velocity
                true_return = ep_return[i] + args.alive_shift * ep_len[i]  # shift undone (approximately)
                if task[i] >= 0:
                    results[task[i]] = ep_return[i]
                    task_eps.append((float(true_return), int(ep_len[i])))
                else:
                    eval_eps.append((float(true_return), int(ep_len[i]), float(speed)))
                ep_return[i] = ep_len[i] = ep_forward[i] = 0
                fresh[i] = True
        if np.isnan(results).any():
            break  # out of time mid-iteration: keep the last whole update
        plus, minus = results[0::2], results[1::2]
        best = np.argsort(-np.maximum(plus, minus))[: args.top]
        sigma = np.concatenate([plus[best], minus[best]]).std() or 1.0
        step = np.einsum("k,kao->ao", plus[best] - minus[best], deltas[best])
        weights = weights + args.step_size / (args.top * sigma) * step
        iteration += 1

        now = time.monotonic()
        elapsed = elapsed_before + now - start
        lens = [length for _, length in task_eps]
        rets = [r for r, _ in task_eps]
        row = {
            "iteration": iteration,
            "env_steps": env_steps,
            "minutes": round(elapsed / 60, 2),
            "steps_per_s": round(env_steps / max(elapsed, 1e-9)),
            "task_mean_len": round(float(np.mean(lens)), 1),
            "task_mean_return": round(float(np.mean(rets)), 1),
        }
        if eval_eps:
            recent = eval_eps[-16:]
            row["eval_mean_len"] = round(float(np.mean([e[1] for e in recent])), 1)
            row["eval_mean_return"] = round(float(np.mean([e[0] for e in recent])), 1)
            row["eval_mean_speed"] = round(float(np.mean([e[2] for e in recent])), 3)
            row["eval_episodes"] = len(recent)
        print(json.dumps(row), flush=True)
        log.write(json.dumps(row) + "\n")
        log.flush()
        if now >= next_checkpoint:
            next_checkpoint = now + args.checkpoint_every
            m, sd = norm.frozen()
            export(weights, m, sd, low, high, out / "latest.pt2", obs_dim)
            save_state(out / "state.npz", elapsed)
            score = float(np.mean(rets))
            if score > best_score:
                best_score = score
                shutil.copyfile(out / "latest.pt2", out / "best.pt2")
                (out / "best.json").write_text(json.dumps(row) + "\n")
            print(f"checkpoint: iteration {iteration}, score {score:.1f} (best {best_score:.1f})", flush=True)
            eval_eps.clear()

    m, sd = norm.frozen()
    export(weights, m, sd, low, high, out / "latest.pt2", obs_dim)
    save_state(out / "state.npz", elapsed_before + time.monotonic() - start)
    print(f"done: {iteration} iterations, {env_steps} env-steps, {(time.monotonic() - start) / 60:.1f} min", flush=True)
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
