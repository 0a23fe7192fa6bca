"""Compare (A/B): two real recordings of the MuJoCo humanoid played together, aligned by step.

A: the random policy, 4 envs; B: the zero policy, 3 envs (so the common envs are 0-2). The
summary's numbers are checked against what `rollout.export.read_rollout` gives for the same bags;
the graph test runs the replay node with `compare:=B` in its own process and the bridge here, and
looks at the ghost's instance poses, the plot's series and the summary on the page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rollout import topics
from rollout.bag import Bag
from rollout.export import read_rollout
from rollout.export.records import episode_ends
from rollout.model import env_grid_offsets
from rollout.recording import RolloutRecorder
from rollout.replay import timeline
from rollout.replay.align import StepAlign
from rollout.sim import make_env
from rollout.viewer.compare import common_envs, summarize
from rollout.viewer.moments import RunSeries

STEPS = 60


def record(out: Path, policy: str, num_envs: int) -> Path:
    env = make_env("mujoco:Humanoid-v5", num_envs=num_envs, seed=0)
    return RolloutRecorder(env, max_steps=STEPS, out=out).run(policy)


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("ab")
    return record(d / "a.mcap", "random", 4), record(d / "b.mcap", "zero", 3)


def export_summary(path: Path, envs: list[int]) -> dict:
    """The summary's numbers, from the NPZ arrays of the bag."""
    arrays = read_rollout(path, envs=envs, extras=("reward_terms", "flags")).arrays
    ends = episode_ends(arrays["rew"], arrays["done"], arrays["terminated"])
    returns = np.concatenate([e.returns for e in ends]).astype(np.float64)
    lengths = np.concatenate([e.lengths for e in ends]).astype(np.float64)
    terms = {k[len("term_") :]: float(v.astype(np.float64).mean()) for k, v in arrays.items() if k.startswith("term_")}
    return {
        "episodes": returns.size,
        "mean_return": returns.mean() if returns.size else np.nan,
        "mean_length": lengths.mean() if lengths.size else np.nan,
        "return_per_env": arrays["rew"].astype(np.float64).sum(axis=0).mean(),
        "terms": terms,
    }


def test_the_summary_equals_what_the_export_computes_from_the_same_bags(bags):
    runs = []
    for path in bags:
        with Bag(path) as b:
            runs.append(RunSeries.from_timeline(timeline(b)))
    envs = common_envs(*runs)
    assert envs.tolist() == [0, 1, 2]  # A has 4 envs, B 3: the common ones
    for path, run in zip(bags, runs):
        got, want = summarize(run, envs), export_summary(path, envs.tolist())
        assert got.episodes == want["episodes"]
        np.testing.assert_allclose(
            [got.mean_return, got.mean_length, got.return_per_env],
            [want["mean_return"], want["mean_length"], want["return_per_env"]],
            rtol=1e-5, equal_nan=True,
        )  # fmt: skip
        assert got.term_means.keys() == want["terms"].keys()
        for name, value in want["terms"].items():
            assert got.term_means[name] == pytest.approx(value, rel=1e-5), name
    a = summarize(runs[0], envs)
    assert a.episodes > 0  # random actions: the humanoid falls within 60 steps


def test_b_is_paired_with_a_by_step():
    # B ended earlier: past its end, its last state stands in
    a_bag, b_bag = _Steps(np.arange(10) * 100, np.arange(10)), _Steps(np.arange(5), np.arange(5))
    align = StepAlign(a_bag, b_bag)  # type: ignore[arg-type]
    assert [align.b_index(t) for t in (0, 50, 300, 950)] == [0, 0, 3, 4]


class _Steps:
    """The two index lookups StepAlign makes of a bag."""

    def __init__(self, times: np.ndarray, steps: np.ndarray) -> None:
        self._t, self._s = times, steps

    def log_times(self, topic: str) -> np.ndarray:
        return self._t

    def steps(self, topic: str) -> np.ndarray:
        return self._s


# ----------------------------------------------------------------------------- through the graph

from test_viser_bridge import router, start, stop, wait_until  # noqa: E402, F401 -- the graph fixtures


def b_poses(path: Path) -> np.ndarray:
    with Bag(path) as b:
        return np.stack([b.decode(topics.STATE, i).body_poses.reshape(3, -1, 7).copy() for i in range(STEPS)])


def test_replay_with_compare_draws_b_as_a_ghost_in_the_plots_and_the_summary(router, bags):
    from rollout.nodes.viser_bridge import ViserBridge

    a, b = bags
    bridge = ViserBridge(["--ros-args", "-p", "port:=0", "-p", "service_timeout:=3.0"])
    replay = start(router, "replay", bag=a, compare=b, start_paused=True, exit_at_end=False)
    try:
        v = bridge.viewer
        wait_until(lambda: v.replay and v.shown_step == 0, what="the first step of A")
        wait_until(lambda: v.compare.scene is not None and v.compare.shown_step == 0, what="B's ghost at step 0")
        ghost = v.compare.scene
        assert ghost.num_drawn == 3 and v.scene.num_drawn == 4  # B has 3 of A's 4 envs
        v.step_slider.value = 37
        wait_until(lambda: v.shown_step == 37 and v.compare.shown_step == 37, what="A and B at step 37")
        positions = np.stack([h.batched_positions for h in ghost.body_handles])
        want = b_poses(b)[37]
        layout = env_grid_offsets(4, 2.0)[:3]  # drawn over A's first three envs
        np.testing.assert_allclose(positions, (want[:, :, :3] + layout[:, None]).transpose(1, 0, 2), atol=1e-5)

        labels = [s["label"] for s in v.rewards_plot.series]
        assert "total" in labels and "B total" in labels
        data = v.rewards_plot.data
        b_total = np.asarray(data[labels.index("B total")])
        assert np.isfinite(b_total).all() and not np.allclose(b_total, data[labels.index("total")])
        text = v.compare_markdown.content
        assert v.compare_markdown.visible and "over 3 common envs" in text and "| mean return |" in text
        v.ghost_checkbox.value = False  # "Show B (ghost)"
        assert v.ghost_checkbox.visible and not any(h.visible for h in ghost.body_handles)
    finally:
        err = stop(replay)
        bridge.destroy_node()
    assert "Traceback" not in err, err
    assert "compare: the bag has 4 envs, compare 3: the common envs 0-2 are compared" in err


def test_a_b_of_another_model_is_drawn_with_its_own_and_said_so(bags, tmp_path):
    from rollout.nodes.replay import compare_notes
    from rollout.viewer import Viewer

    env = make_env("synthetic", num_envs=2, seed=0)
    other = RolloutRecorder(env, max_steps=5, out=tmp_path / "synthetic.mcap").run("random")
    with Bag(bags[0]) as a, Bag(other) as b:
        robot_a, robot_b = a.decode(topics.ROBOT, 0), b.decode(topics.ROBOT, 0)
        state_b = b.decode(topics.STATE, 3)
    assert compare_notes(robot_a, robot_b) == [
        "the bag has 4 envs, compare 2: the common envs 0-1 are compared",
        f"compare records another model ({robot_b.env} vs {robot_a.env}): drawn with its own",
    ]
    with Viewer(port=0) as v:
        v.on_robot(robot_a)
        v.on_compare_robot(robot_b)
        v.on_compare_state(state_b)
        ghost = v.compare.scene
        assert ghost.num_drawn == 2 and ghost.num_bodies == len(robot_b.body_names)
        # the synthetic env records no model: B's own is one sphere per body, A keeps the humanoid
        assert np.allclose(ghost.mesh_radius, 0.04, atol=1e-3) and v.scene.mesh_radius.max() > 0.1
        assert v.compare.shown_step == 3
