"""Train the demo policy: PPO with an MLP policy on our humanoid (Gymnasium Humanoid-v5 semantics).

    python train/train_humanoid.py --minutes 85 --out train/out   # then copy train/out/best.pt2 to rollout/data/humanoid_walk.pt2

PPO (Schulman et al. 2017) on one MuJoCo batch of `--envs` humanoids (rollout.sim, both CPU
cores), with what makes it learn Humanoid in a few million steps: a running normalisation of
observations, rewards scaled by the running std of the discounted return, GAE(0.95), a
state-independent Gaussian in a [-1, 1] action space scaled to the actuators' range, and a
learning rate annealed to zero over the budget. The policy reads the first `--features`
entries of the observation (qpos[2:] and qvel: the whole state, 45 numbers), which keeps the
networks small enough to update on a CPU in the time the simulation takes.

Episodes cut by the 1,000-step limit are bootstrapped with the value of their last state
instead of being treated as falls. Every `--checkpoint-every` seconds the deterministic policy
(the Gaussian's mean) is exported as a `.pt2` taking the whole 348-long observation; `best.pt2`
is the export whose recent training episodes lasted longest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

OBS_CLIP = 10.0


class RunningMeanStd:
    """Mean and variance of a stream of batches (Chan et al.'s parallel update)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.mean = np.zeros(shape)
        self.var = np.ones(shape)
        self.count = 1e-4

    def update(self, x: np.ndarray) -> None:
        mean, var, n = x.mean(axis=0), x.var(axis=0), x.shape[0]
        delta, total = mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + var * n + delta**2 * self.count * n / total) / total
        self.count = total


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ELU())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: int) -> None:
        super().__init__()
        self.actor = mlp([obs_dim, hidden, hidden, act_dim])
        self.critic = mlp([obs_dim, hidden, hidden, 1])
        self.log_std = nn.Parameter(torch.full((act_dim,), -0.5))
        nn.init.orthogonal_(self.actor[-1].weight, 0.01)
        nn.init.zeros_(self.actor[-1].bias)

    def dist(self, x: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.actor(x), self.log_std.exp())


class DeployedPolicy(nn.Module):
    """obs [B, 348] -> actions: normalise the features, the actor's mean, clip and scale."""

    def __init__(self, actor: nn.Module, mean: np.ndarray, std: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        self.actor = actor
        self.features = int(mean.shape[0])
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.register_buffer("centre", torch.tensor((high + low) / 2, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor((high - low) / 2, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = ((obs[:, : self.features] - self.mean) / self.std).clamp(-OBS_CLIP, OBS_CLIP)
        return self.centre + self.scale * self.actor(x).clamp(-1.0, 1.0)


def export(model: ActorCritic, norm: RunningMeanStd, low: np.ndarray, high: np.ndarray, path: Path, obs_dim: int) -> None:
    """Write the deterministic policy as a `.pt2` that rollout.policy.make_policy loads."""
    import copy

    from rollout.policy import export_policy

    std = np.sqrt(norm.var) + 1e-8
    deployed = DeployedPolicy(copy.deepcopy(model.actor), norm.mean, std, low, high)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.pt2")
    export_policy(deployed, tmp, obs_dim=obs_dim)
    tmp.replace(path)  # a reader never sees half a file


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=85.0, help="wall-clock budget (default 85)")
    p.add_argument("--out", type=Path, default=Path("train/out"), help="folder for checkpoints and the log")
    p.add_argument("--envs", type=int, default=128, help="parallel envs in the batch (default 128)")
    p.add_argument("--horizon", type=int, default=32, help="steps per env per update (default 32)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--lam", type=float, default=0.95)
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--features", type=int, default=45,
                   help="observation entries the policy reads, from the start (default 45: qpos[2:] and qvel)")
    p.add_argument("--threads", type=int, default=2, help="threads for the simulation and for torch")
    p.add_argument("--checkpoint-every", type=float, default=120.0, help="seconds between exports (default 120)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from rollout.sim import make_env

    n, horizon, k = args.envs, args.horizon, args.features
    env = make_env("humanoid", num_envs=n, seed=args.seed, threads=args.threads)
    info = env.info
    low, high = np.asarray(info.action_low, np.float32), np.asarray(info.action_high, np.float32)
    centre, half = (high + low) / 2, (high - low) / 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "train_log.jsonl").open("a")

    model = ActorCritic(k, info.act_dim, args.hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, eps=1e-5)
    obs_norm = RunningMeanStd((k,))
    ret_norm = RunningMeanStd(())
    discounted = np.zeros(n)

    def normalise(obs: np.ndarray) -> torch.Tensor:
        x = (obs[:, :k] - obs_norm.mean) / np.sqrt(obs_norm.var + 1e-8)
        return torch.as_tensor(np.clip(x, -OBS_CLIP, OBS_CLIP), dtype=torch.float32)

    start = time.monotonic()
    budget = args.minutes * 60.0
    next_checkpoint = start + args.checkpoint_every
    best_len = -1.0
    obs = env.reset(args.seed)
    obs_norm.update(obs[:, :k])
    ep_len, ep_ret, ep_fwd = np.zeros(n), np.zeros(n), np.zeros(n)
    finished: list[tuple[float, float, float]] = []  # (length, return, speed) of training episodes
    env_steps, update = 0, 0

    buf_x = torch.zeros(horizon, n, k)
    buf_a = torch.zeros(horizon, n, info.act_dim)
    buf_logp = torch.zeros(horizon, n)
    buf_v = torch.zeros(horizon + 1, n)
    buf_r = torch.zeros(horizon, n)
    buf_done = torch.zeros(horizon, n)  # a fall: no bootstrap
    buf_cut = torch.zeros(horizon, n)  # an episode boundary of either kind

    while time.monotonic() - start < budget:
        frac = min((time.monotonic() - start) / budget, 1.0)
        for g in optimiser.param_groups:
            g["lr"] = args.lr * (1.0 - frac)
        with torch.no_grad():
            for t in range(horizon):
                x = normalise(obs)
                d = model.dist(x)
                a = d.sample()
                buf_x[t], buf_a[t], buf_logp[t] = x, a, d.log_prob(a).sum(-1)
                v = model.critic(x).squeeze(-1)
                buf_v[t] = v
                act = centre + half * np.clip(a.numpy(), -1.0, 1.0)
                s = env.step(act.astype(np.float32))
                reward = s.reward.astype(np.float64)
                discounted = discounted * args.gamma + reward
                ret_norm.update(discounted)
                scaled = reward / np.sqrt(ret_norm.var + 1e-8)
                cut = s.terminated | s.truncated
                discounted[cut] = 0.0
                # a time-limit cut is not a fall: bootstrap it with the value of the state it left
                scaled = scaled + args.gamma * v.numpy() * (s.truncated & ~s.terminated)
                buf_r[t] = torch.as_tensor(scaled, dtype=torch.float32)
                buf_done[t] = torch.as_tensor(s.terminated, dtype=torch.float32)
                buf_cut[t] = torch.as_tensor(cut, dtype=torch.float32)
                ep_len += 1
                ep_ret += s.reward
                ep_fwd += s.terms[1]
                for i in np.flatnonzero(cut):
                    finished.append((ep_len[i], ep_ret[i], ep_fwd[i] / 1.25 / ep_len[i]))
                    ep_len[i] = ep_ret[i] = ep_fwd[i] = 0.0
                obs = s.obs
                obs_norm.update(obs[:, :k])
                env_steps += n
            buf_v[horizon] = model.critic(normalise(obs)).squeeze(-1)
            # GAE; at a cut the next value belongs to a new episode, so none is carried over
            adv = torch.zeros(horizon, n)
            last = torch.zeros(n)
            for t in reversed(range(horizon)):
                keep = 1.0 - buf_cut[t]
                delta = buf_r[t] + args.gamma * buf_v[t + 1] * keep - buf_v[t]
                last = delta + args.gamma * args.lam * keep * last
                adv[t] = last
            ret = adv + buf_v[:horizon]

        flat = horizon * n
        bx, ba, blogp = buf_x.reshape(flat, k), buf_a.reshape(flat, -1), buf_logp.reshape(flat)
        badv, bret = adv.reshape(flat), ret.reshape(flat)
        size = flat // args.minibatches
        for _ in range(args.epochs):
            order = torch.randperm(flat)
            for j in range(args.minibatches):
                idx = order[j * size : (j + 1) * size]
                d = model.dist(bx[idx])
                logp = d.log_prob(ba[idx]).sum(-1)
                ratio = (logp - blogp[idx]).exp()
                a_ = badv[idx]
                a_ = (a_ - a_.mean()) / (a_.std() + 1e-8)
                policy_loss = -torch.min(ratio * a_, ratio.clamp(1 - args.clip, 1 + args.clip) * a_).mean()
                value_loss = 0.5 * (model.critic(bx[idx]).squeeze(-1) - bret[idx]).pow(2).mean()
                loss = policy_loss + value_loss
                optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimiser.step()
        update += 1

        now = time.monotonic()
        if (update % 10 == 0 or now - start >= budget) and finished:
            recent = np.array(finished[-64:])
            row = {
                "update": update,
                "env_steps": env_steps,
                "minutes": round((now - start) / 60, 2),
                "steps_per_s": round(env_steps / (now - start)),
                "mean_len": round(float(recent[:, 0].mean()), 1),
                "mean_return": round(float(recent[:, 1].mean()), 1),
                "mean_speed": round(float(recent[:, 2].mean()), 3),
                "std": round(float(model.log_std.detach().exp().mean()), 3),
            }
            print(json.dumps(row), flush=True)
            log.write(json.dumps(row) + "\n")
            log.flush()
        if now >= next_checkpoint and finished:
            next_checkpoint = now + args.checkpoint_every
            export(model, obs_norm, low, high, out / "latest.pt2", info.obs_dim)
            score = float(np.array(finished[-64:])[:, 0].mean())
            if score > best_len:
                best_len = score
                shutil.copyfile(out / "latest.pt2", out / "best.pt2")
            finished.clear()
            print(f"checkpoint: update {update}, recent mean length {score:.0f} (best {best_len:.0f})", flush=True)

    export(model, obs_norm, low, high, out / "latest.pt2", info.obs_dim)
    print(f"done: {update} updates, {env_steps} env-steps, {(time.monotonic() - start) / 60:.1f} min", flush=True)
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
