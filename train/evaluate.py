"""Measure policies as the README reports them: record 16 envs x 1,000 steps, read the bag back.

    python train/evaluate.py demo random zero

Each policy is recorded with `RolloutRecorder` (the bytes `record.launch.py` writes) and then
summarised from the bag with `rollout.bag.summary`: mean length of the episodes that ended
(episodes are cut at 1,000 steps), mean `reward_forward` per env-step, and forward speed
(`reward_forward` / 1.25, Humanoid-v5's forward weight: the mass centre's x velocity in m/s).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rollout import RolloutRecorder, make_env
from rollout.bag.summary import rollout_summary

FORWARD_WEIGHT = 1.25


def measure(policy: str, *, num_envs: int, steps: int, seed: int, out: Path) -> dict[str, float]:
    env = make_env("humanoid", num_envs=num_envs, seed=seed)
    bag = RolloutRecorder(env, max_steps=steps, out=out / policy.replace("/", "_"), seed=seed).run(policy)
    env.close()
    s = rollout_summary(bag)
    assert s is not None
    forward = s.term_means["reward_forward"]
    return {
        "episodes": float(s.episode_lengths.size),
        "mean_length": float(s.episode_lengths.mean()) if s.episode_lengths.size else float(steps),
        "full_length": float((s.episode_lengths >= steps).sum()),
        "reward_forward": forward,
        "speed": forward / FORWARD_WEIGHT,
        "return": float(s.episode_returns.mean()) if s.episode_returns.size else float("nan"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("policies", nargs="+", help="policy specs: demo, random, zero, a .pt2 path")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print("| policy | mean episode length (steps) | episodes ended / at 1,000 steps | mean forward speed (m/s) | mean reward_forward | mean return |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for policy in a.policies:
            m = measure(policy, num_envs=a.num_envs, steps=a.steps, seed=a.seed, out=Path(tmp))
            print(
                f"| `{policy}` | {m['mean_length']:.0f} | {m['episodes']:.0f} / {m['full_length']:.0f} | "
                f"{m['speed']:.2f} | {m['reward_forward']:.3f} | {m['return']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
