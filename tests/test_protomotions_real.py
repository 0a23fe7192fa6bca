"""The ProtoMotions adapter and checkpoint path against real ProtoMotions (SMPL humanoid, MuJoCo, CPU).

ProtoMotions is not on PyPI, so these skip where `protomotions` does not import; see the README's
ProtoMotions section for the install. The env is built as ProtoMotions' `train_agent.py` builds
it, from its `mimic` experiment and its shipped example motion, with two outside workarounds for
its MuJoCo backend: actuator gears set to 1 (its PD conversion ignores them) and
`contact_match_rew` dropped (it raises when the motion has no contact labels).

The checkpoint test needs a checkpoint trained by ProtoMotions itself: set
ROLLOUT_PROTOMOTIONS_CHECKPOINT to its `last.ckpt` (it skips without one).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("protomotions", reason="ProtoMotions is not installed (it is not on PyPI; see the README)")
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # torch.compile of its components costs ~40 s on a CPU

import protomotions  # noqa: E402
import torch  # noqa: E402

from rollout.bag import Bag  # noqa: E402
from rollout.recording import RolloutRecorder  # noqa: E402
from rollout.sim.protomotions import ProtoMotionsV3Env  # noqa: E402

CHECKOUT = Path(protomotions.__file__).resolve().parent.parent
MOTION = CHECKOUT / "examples" / "data" / "smpl_humanoid_sit_armchair.motion"
EXPERIMENT = CHECKOUT / "examples" / "experiments" / "mimic" / "mlp.py"
STEPS = 80


class Spy:
    """The real env, unchanged, keeping a copy of what each step reported (the tests compare
    the bag against it)."""

    def __init__(self, env: object) -> None:
        self._env = env
        self.steps: list[dict[str, np.ndarray]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._env, name)

    def step(self, actions: torch.Tensor) -> tuple:
        out = self._env.step(actions)
        kept = {k: v.detach().cpu().numpy().copy() for k, v in out[4].items() if hasattr(v, "detach")}
        root = self._env.simulator.get_robot_state()
        kept["root_pos"] = root.rigid_body_pos[:, 0].cpu().numpy().copy()
        kept["root_rot"] = root.rigid_body_rot[:, 0].cpu().numpy().copy()
        kept["done"] = out[2].cpu().numpy().copy()
        self.steps.append(kept)
        return out


def build_mimic_env(num_envs: int = 1) -> object:
    """ProtoMotions' mimic env on MuJoCo, built as train_agent.py does (module docstring)."""
    if not MOTION.is_file() or not EXPERIMENT.is_file():
        pytest.skip(f"the ProtoMotions checkout at {CHECKOUT} lacks its examples")
    from lightning.fabric import Fabric
    from protomotions.simulator.base_simulator.utils import convert_friction_for_simulator
    from protomotions.utils.component_builder import build_all_components
    from protomotions.utils.config_builder import build_standard_configs
    from protomotions.utils.hydra_replacement import get_class

    spec = importlib.util.spec_from_file_location("mimic_mlp", EXPERIMENT)
    exp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exp)  # type: ignore[union-attr]
    args = argparse.Namespace(
        robot_name="smpl", simulator="mujoco", num_envs=num_envs, headless=True, experiment_name="rollout_test",
        motion_file=str(MOTION), scenes_file=None, seed=0,
    )  # fmt: skip
    cfg = build_standard_configs(
        args, exp.terrain_config, exp.scene_lib_config, exp.motion_lib_config, exp.env_config,
        exp.configure_robot_and_simulator, None,
    )  # fmt: skip
    cfg["env"].reward_components.pop("contact_match_rew", None)
    fabric = Fabric(accelerator="cpu", devices=1, num_nodes=1, loggers=[], callbacks=[])
    fabric.launch()
    terrain, sim_cfg = convert_friction_for_simulator(cfg["terrain"], cfg["simulator"])
    parts = build_all_components(
        terrain_config=terrain, scene_lib_config=cfg["scene_lib"], motion_lib_config=cfg["motion_lib"],
        simulator_config=sim_cfg, robot_config=cfg["robot"], device=fabric.device, save_dir=None,
    )  # fmt: skip
    env = get_class(cfg["env"]._target_)(
        config=cfg["env"], robot_config=cfg["robot"], device=fabric.device, terrain=parts["terrain"],
        scene_lib=parts["scene_lib"], motion_lib=parts["motion_lib"], simulator=parts["simulator"],
    )  # fmt: skip
    env.simulator.model.actuator_gear[:, 0] = 1
    return env


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Spy, ProtoMotionsV3Env, Path]:
    torch.set_num_threads(1)
    spy = Spy(build_mimic_env())
    env = ProtoMotionsV3Env(spy)  # as called today
    bag = RolloutRecorder(env, max_steps=STEPS, out=tmp_path_factory.mktemp("pm") / "bag").run("zero")
    return spy, env, bag


def test_every_raw_term_the_env_reports_is_recorded_with_its_values(recorded: tuple) -> None:
    spy, env, bag = recorded
    steps = spy.steps[-STEPS:]  # the recorder's steps (the adapter may have probed before)
    raw = sorted(k[len("raw_r/") :] for k in steps[0] if k.startswith("raw_r/"))
    assert len(raw) >= 5  # gt_rew, gr_rew, gv_rew, gav_rew, rh_rew, pow_rew, action_smoothness
    with Bag(bag) as b:
        msgs = list(b.iter_decoded("/rollout/reward_terms"))
    assert len(msgs) == STEPS
    names = [t.name for t in msgs[0].terms]
    assert sorted(n for n in names if "/" not in n and n != "multiplicative_reward") == raw
    for msg, reported in zip(msgs, steps):
        by_name = {t.name: np.asarray(t.value) for t in msg.terms}
        for name in raw:
            np.testing.assert_array_equal(by_name[name], reported[f"raw_r/{name}"].reshape(-1))
        for key in (k for k in reported if k.startswith("scaled_r/")):
            np.testing.assert_array_equal(by_name["scaled/" + key[len("scaled_r/") :]], reported[key].reshape(-1))
        np.testing.assert_allclose(np.asarray(msg.total), reported["total_env_reward"].reshape(-1), rtol=1e-6)


def test_base_pose_is_the_simulators_root_in_xyzw(recorded: tuple) -> None:
    spy, env, bag = recorded
    steps = spy.steps[-STEPS:]
    with Bag(bag) as b:
        states = list(b.iter_decoded("/rollout/state"))
    # state t+1 is the pose after step t (unless that env was reset)
    for t in range(STEPS - 1):
        if steps[t]["done"].any():
            continue
        np.testing.assert_allclose(np.asarray(states[t + 1].base_pos).reshape(-1, 3), steps[t]["root_pos"], atol=1e-6)
        np.testing.assert_allclose(np.asarray(states[t + 1].base_quat).reshape(-1, 4), steps[t]["root_rot"], atol=1e-6)
    q = np.asarray(states[1].base_quat).reshape(-1, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)


def test_ended_episodes_are_recorded_with_reason_and_terminal_pose(recorded: tuple) -> None:
    spy, env, bag = recorded
    steps = spy.steps[-STEPS:]
    ended = [t for t, s in enumerate(steps) if s["done"].any()]
    if not ended:
        pytest.skip("no episode ended within the recorded steps")
    with Bag(bag) as b:
        events = {int(m.step): m for m in b.iter_decoded("/rollout/episodes")}
        states = {int(m.step): m for m in b.iter_decoded("/rollout/state")}
    assert sorted(events) == ended
    t = ended[0]
    e = events[t]
    flagged = [k[len("termination/") :] for k, v in steps[t].items() if k.startswith("termination/") and v.reshape(-1)[0] > 0.5]
    assert list(e.reasons) == ["+".join(flagged) if flagged else ("terminated" if e.terminated[0] else "truncated")]
    assert env.info.termination_names and set(flagged) <= set(env.info.termination_names)
    # the terminal pose is the state the step reached (raw/ extras), not the reset pose after it
    final = np.asarray(e.final_body_poses).reshape(1, -1, 7)
    np.testing.assert_allclose(final[0, :, :3].reshape(-1), steps[t]["raw/rigid_body_pos"].reshape(-1), atol=1e-6)
    reset_pos = np.asarray(states[t + 1].base_pos) if t + 1 in states else None
    if reset_pos is not None:
        assert not np.allclose(reset_pos, final[0, 0, :3], atol=1e-3)


def test_the_robot_description_draws_the_envs_own_model(recorded: tuple) -> None:
    _, env, bag = recorded
    from rollout.model import body_meshes

    with Bag(bag) as b:
        (robot,) = b.iter_decoded("/rollout/robot")
    meshes = body_meshes(robot.model, robot.model_format)
    assert [m.name for m in meshes] == list(robot.body_names) == list(env.info.body_names)
    assert all(not m.is_empty for m in meshes)


CKPT = os.environ.get("ROLLOUT_PROTOMOTIONS_CHECKPOINT", "")


@pytest.mark.skipif(not Path(CKPT).is_file(), reason="set ROLLOUT_PROTOMOTIONS_CHECKPOINT to a ProtoMotions last.ckpt")
def test_a_checkpoint_records_with_one_command(tmp_path: Path) -> None:
    out = tmp_path / "bag"
    cmd = [sys.executable, "-m", "rollout.cli", "launch", "record.launch.py", f"env:=protomotions:{CKPT}",
           "trust_checkpoint:=true", "num_envs:=1", "steps:=40", f"out:={out}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    with Bag(out) as b:
        (robot,) = b.iter_decoded("/rollout/robot")
        terms = list(b.iter_decoded("/rollout/reward_terms"))
        actions = list(b.iter_decoded("/rollout/action"))
    assert robot.policy == CKPT and len(robot.policy_sha256) == 64  # the checkpoint's own agent
    assert robot.env.startswith("protomotions:") and "(mujoco)" in robot.env
    assert len(terms) == 40 and len(terms[0].terms) >= 5
    assert np.abs(np.asarray(actions[5].action)).sum() > 0  # the agent acted


@pytest.mark.skipif(not Path(CKPT).is_file(), reason="set ROLLOUT_PROTOMOTIONS_CHECKPOINT to a ProtoMotions last.ckpt")
def test_an_untrusted_checkpoint_ends_in_one_line(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "rollout.cli", "run", "sim", "--ros-args", "-p", f"env:=protomotions:{CKPT}", "-p", "steps:=1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "trust_checkpoint:=true" in lines[0]


def test_protomotions_h1_meshes_travel_inside_the_model() -> None:
    import mujoco

    from rollout.model import body_meshes, self_contained_mjcf

    path = CHECKOUT / "protomotions" / "data" / "assets" / "mjcf" / "h1_2.xml"
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout")
    original = mujoco.MjModel.from_xml_path(str(path))  # its STL files (real ones in the snapshot)
    text = self_contained_mjcf(path)
    assert "file=" not in text
    inlined = mujoco.MjModel.from_xml_string(text)
    assert (inlined.nmesh, inlined.nmeshface) == (original.nmesh, original.nmeshface)
    np.testing.assert_array_equal(inlined.body_mass, original.body_mass)
    np.testing.assert_allclose(inlined.body_inertia, original.body_inertia, rtol=1e-6)
    drawn = sum(len(m.faces) for m in body_meshes(inlined))
    assert drawn > 100_000  # the robot is drawn from its meshes, not from primitives
