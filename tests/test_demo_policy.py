"""The shipped demo policy: a small .pt2 that loads through the safe loader and walks the humanoids;
the training script that made it runs and exports a policy of the same kind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from rollout.policy import make_policy, policy_for, sha256_file
from rollout.sim import make_env, run_steps

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "rollout" / "data" / "humanoid_walk.pt2"


def episodes_and_forward(spec: str, steps: int) -> tuple[int, float]:
    env = make_env("humanoid", num_envs=8, seed=0)
    policy = policy_for(env.info, spec)
    ended, forward = 0, 0.0
    for rec in run_steps(env, policy, seed=0, steps=steps):
        ended += len(rec.episodes)
        forward += float(rec.terms[1].mean())
    return ended, forward / steps


def test_demo_is_a_small_pt2_loaded_by_name_through_the_safe_loader() -> None:
    assert DEMO.stat().st_size <= 2 * 1024 * 1024
    policy = make_policy("demo", obs_dim=348, act_dim=17)
    assert policy.format == "pt2" and policy.sha256 == sha256_file(DEMO)
    act = policy(np.zeros((5, 348), np.float32))
    assert act.shape == (5, 17) and np.all(np.abs(act) <= 0.4 + 1e-6)  # within Humanoid-v5's ctrl range


def test_demo_walks_the_humanoids_forward_where_random_actions_fall() -> None:
    demo_ended, demo_forward = episodes_and_forward("demo", 300)
    random_ended, _ = episodes_and_forward("random", 300)
    assert random_ended > 40, random_ended  # 8 envs falling every ~25 steps
    assert demo_ended <= 1, f"{demo_ended} of 8 demo humanoids fell within 300 steps"
    assert demo_forward / 1.25 > 0.5, f"mean forward speed {demo_forward / 1.25:.2f} m/s"  # reward_forward = 1.25 x velocity


def test_training_script_exports_a_policy_that_loads(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "train" / "train_humanoid.py"), "--minutes", "0.1", "--envs", "8",
         "--horizon", "16", "--threads", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=400,
    )
    assert p.returncode == 0, p.stderr
    assert '"update": ' in p.stdout and "done:" in p.stdout
    policy = make_policy(str(tmp_path / "latest.pt2"), obs_dim=348, act_dim=17)
    assert policy.format == "pt2" and (tmp_path / "train_log.jsonl").stat().st_size > 0
