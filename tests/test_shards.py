"""Per-rank shards: sims under their own namespaces, one bag each, read and exported as one rollout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rollout.bag import Bag
from rollout.errors import BagError
from rollout.export.sharded import read_rollout_set

ROLLOUT = [sys.executable, "-m", "rollout.cli"]
ENVS, STEPS = 4, 20


def record(out: Path, namespace: str, seed: int) -> None:
    done = subprocess.run([*ROLLOUT, "launch", "record.launch.py", "env:=synthetic", f"num_envs:={ENVS}", f"steps:={STEPS}",
                           f"namespace:={namespace}", f"seed:={seed}", f"out:={out}"],
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"/{namespace}/rollout/state: {STEPS} messages" in done.stdout


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shards")
    bags = {"rank10": root / "r10", "rank2": root / "r2"}  # rank2 comes first, though named later
    for k, (ns, path) in enumerate(bags.items()):
        record(path, ns, seed=k + 1)
    return bags


def test_shards_export_as_one_rollout_with_envs_in_rank_order(shards: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "all.npz"
    done = subprocess.run([*ROLLOUT, "run", "to_npz", str(shards["rank10"]), str(shards["rank2"]), "-o", str(out),
                           "--extra", "flags", "--no-progress"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{STEPS} steps x {2 * ENVS} envs" in done.stdout
    assert f"envs 0-{ENVS - 1}: {shards['rank2']} [rank2]" in done.stdout
    data = np.load(out, allow_pickle=True)
    assert data["obs"].shape[:2] == (STEPS, 2 * ENVS)
    for ns, cols in (("rank2", slice(0, ENVS)), ("rank10", slice(ENVS, 2 * ENVS))):
        with Bag(shards[ns]) as bag:
            obs = bag.read_arrays(f"/{ns}/rollout/state", ["obs"])["obs"].reshape(STEPS, ENVS, -1)
            act = bag.read_arrays(f"/{ns}/rollout/action", ["action"])["action"].reshape(STEPS, ENVS, -1)
        assert np.array_equal(data["obs"][:, cols], obs)
        assert np.array_equal(data["act"][:, cols], act)
    assert data["info"][0]["reward_terms"]["reward_alive"].shape == (2 * ENVS,)
    assert data["env_ids"].tolist() == list(range(2 * ENVS))


def test_envs_index_the_concatenated_rollout(shards: dict[str, Path]) -> None:
    whole = read_rollout_set([shards["rank2"], shards["rank10"]])
    picked = read_rollout_set([shards["rank2"], shards["rank10"]], envs=[ENVS + 1, 0])
    assert np.array_equal(picked.arrays["obs"], whole.arrays["obs"][:, [ENVS + 1, 0]])
    assert np.array_equal(picked.arrays["info"][3]["done"], whole.arrays["info"][3]["done"][[ENVS + 1, 0]])


def test_one_namespace_in_two_bags_is_refused_in_one_line(shards: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BagError, match="namespace 'rank2' is in both"):
        read_rollout_set([shards["rank2"], shards["rank2"]])
    done = subprocess.run([*ROLLOUT, "run", "to_npz", str(shards["rank2"]), str(shards["rank2"]), "-o", str(tmp_path / "x.npz")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    assert "namespace 'rank2' is in both" in done.stdout + done.stderr
