"""A ProtoMotions checkpoint in the loop: env and agent built as ProtoMotions' `inference_agent.py` does.

    env = load_checkpoint("results/mimic/last.ckpt", num_envs=1, trust=True)   # simulator: as trained
    RolloutRecorder(env, max_steps=300).run("checkpoint")                      # env.policy: the agent

or, as one command, `rollout launch record.launch.py env:=protomotions:results/mimic/last.ckpt
trust_checkpoint:=true num_envs:=1`.

The build sequence (ProtoMotions main, 2026): the frozen configs in
`resolved_configs_inference.pt` beside the checkpoint → switch simulator if asked
(`update_simulator_config_for_test`) → `num_envs`, headless → a Lightning `Fabric` (CPU for
MuJoCo) → `convert_friction_for_simulator` → `build_all_components` → the env class from
`env._target_` → the agent class from `agent._target_`, `setup()`, `load(ckpt, load_env=False,
load_training_state=False)`. The policy then calls, per step, `pre_collect_step`,
`add_agent_info_to_obs`, `obs_dict_to_tensordict` and takes `model(td)["mean_action"]`
(deterministic), as ProtoMotions' own evaluator does.

Trust: both files are pickles (`torch.load(weights_only=False)` in ProtoMotions itself), and
unpickling runs code chosen by whoever wrote them. They are opened only with `trust=True`
(`trust_checkpoint:=true`); without it the error says so before anything is read.

MuJoCo backend: ProtoMotions' PD conversion ignores the MJCF actuator `gear` (the SMPL
humanoid's 500 makes every PD torque 500 times too strong and the sim explodes on its first
step), so on that backend the gears are set to 1 after the build (logged; `fix_mujoco_gear=False`
leaves them alone).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from rollout.errors import EnvError

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "protomotions:"
CONFIGS_FILE = "resolved_configs_inference.pt"


def is_checkpoint_spec(spec: str) -> bool:
    """Whether an env spec names a ProtoMotions checkpoint (`protomotions:<path>`)."""
    return spec.startswith(CHECKPOINT_PREFIX)


def check_checkpoint(path: str | Path, *, trust: bool) -> tuple[Path, Path]:
    """The checkpoint and its configs file, or EnvError in one line: missing, or not trusted."""
    ckpt = Path(path)
    if not str(path):
        raise EnvError("env protomotions: needs a checkpoint path, e.g. protomotions:results/mimic/last.ckpt")
    if ckpt.is_dir():
        raise EnvError(f"ProtoMotions checkpoint {ckpt} is a directory; give the checkpoint file in it (last.ckpt)")
    if not ckpt.is_file():
        raise EnvError(f"ProtoMotions checkpoint {ckpt} does not exist")
    configs = ckpt.parent / CONFIGS_FILE
    if not configs.is_file():
        raise EnvError(f"{ckpt} is not a ProtoMotions checkpoint: there is no {CONFIGS_FILE} beside it")
    if not trust:
        raise EnvError(
            f"ProtoMotions checkpoint {ckpt} and its {CONFIGS_FILE} are pickles, and loading them runs code "
            "from the files; load them only if you trust where they came from: add trust_checkpoint:=true "
            "(Python: trust=True)"
        )
    return ckpt, configs


def load_checkpoint(
    path: str | Path,
    *,
    num_envs: int = 1,
    seed: int = 0,
    trust: bool = False,
    simulator: str = "",
    motion_file: str = "",
    terms: str = "both",
    fix_mujoco_gear: bool = True,
) -> Any:
    """A `ProtoMotionsV3Env` over the env of checkpoint `path`, with the checkpoint's agent as
    `env.policy` (a `rollout.policy.Policy`).

    simulator: "" keeps the one it was trained with; else e.g. "mujoco", "isaacgym", "newton".
    motion_file: "" keeps the checkpoint's. Raises EnvError in one line for a missing or untrusted
    checkpoint, ProtoMotions or the simulator not installed, or configs that do not match the
    ProtoMotions installed here.
    """
    ckpt, configs_path = check_checkpoint(path, trust=trust)
    try:
        importlib.import_module("protomotions")
    except ImportError as e:
        raise EnvError(f"env protomotions: needs ProtoMotions installed (pip install -e <ProtoMotions checkout>): {e}") from None
    import torch

    from rollout.policy.base import first_line
    from rollout.policy.formats import sha256_file
    from rollout.sim.protomotions.adapter import ProtoMotionsV3Env

    torch.manual_seed(int(seed))
    try:
        configs = torch.load(configs_path, map_location="cpu", weights_only=False)  # trusted above
    except Exception as e:  # classes that moved or vanished since it was pickled
        raise EnvError(
            f"ProtoMotions checkpoint {ckpt}: its {CONFIGS_FILE} does not match the ProtoMotions installed here "
            f"({type(e).__name__}: {first_line(e)})"
        ) from None
    try:
        sim_name, built = _build(ckpt, configs, num_envs=num_envs, simulator=simulator, motion_file=motion_file)
    except EnvError:
        raise
    except FileNotFoundError as e:
        raise EnvError(
            f"ProtoMotions checkpoint {ckpt} names a file that is not here: {e.filename} (relative paths in its "
            "configs are tried from the current directory and the checkpoint's parent directories)"
        ) from None
    except ImportError as e:
        raise EnvError(f"ProtoMotions checkpoint {ckpt}: a module it needs is not installed here: {first_line(e)}") from None
    except (KeyError, AttributeError, TypeError) as e:  # configs of another ProtoMotions version
        raise EnvError(
            f"ProtoMotions checkpoint {ckpt} does not match the ProtoMotions installed here "
            f"({type(e).__name__}: {first_line(e)})"
        ) from None
    except Exception as e:  # e.g. weights that do not fit the model, or a simulator's own limits
        raise EnvError(
            f"ProtoMotions could not build the env and agent of checkpoint {ckpt}: {type(e).__name__}: {first_line(e)}"
        ) from None
    env, agent = built
    if sim_name == "mujoco" and fix_mujoco_gear:
        _unit_gears(env.simulator)
    wrapped = ProtoMotionsV3Env(env, terms=terms, name=f"{CHECKPOINT_PREFIX}{ckpt} ({sim_name})")  # type: ignore[arg-type]
    wrapped.policy = _agent_policy(agent, wrapped, name=str(ckpt), sha256=sha256_file(ckpt))
    return wrapped


def _build(ckpt: Path, configs: dict, *, num_envs: int, simulator: str, motion_file: str) -> tuple[str, tuple[Any, Any]]:
    """ProtoMotions' inference build sequence (module docstring); returns the simulator name and (env, agent)."""
    from protomotions.utils.hydra_replacement import get_class

    robot_config = configs["robot"]
    simulator_config = configs["simulator"]
    terrain_config = configs.get("terrain")
    scene_lib_config = configs["scene_lib"]
    motion_lib_config = configs["motion_lib"]
    env_config = configs["env"]
    agent_config = configs["agent"]

    trained = simulator_config._target_.split(".")[-3]  # protomotions.simulator.<name>.simulator.<Class>
    sim_name = simulator or trained
    _import_simulator(sim_name)
    if sim_name != trained:
        from protomotions.simulator.factory import update_simulator_config_for_test

        log.info("switching simulator from %s (training) to %s", trained, sim_name)
        simulator_config = update_simulator_config_for_test(
            current_simulator_config=simulator_config, new_simulator=sim_name, robot_config=robot_config
        )
    simulator_config.num_envs = int(num_envs)
    simulator_config.headless = True
    if motion_file:
        motion_lib_config.motion_file = motion_file
        motion_lib_config.motion_file_shard_indices = None
    # configs keep paths relative to where training ran, usually a parent of results/<run>/
    motion_lib_config.motion_file = _found(motion_lib_config.motion_file, ckpt)
    if getattr(scene_lib_config, "scene_file", None):
        scene_lib_config.scene_file = _found(scene_lib_config.scene_file, ckpt)
    motion_lib_config.validate()

    from lightning.fabric import Fabric
    from protomotions.simulator.base_simulator.utils import convert_friction_for_simulator
    from protomotions.utils.component_builder import build_all_components
    from protomotions.utils.fabric_config import FabricConfig

    fabric = Fabric(
        **FabricConfig(
            accelerator="cpu" if sim_name == "mujoco" else "gpu", devices=1, num_nodes=1, loggers=[], callbacks=[]
        ).as_kwargs()
    )
    fabric.launch()
    terrain_config, simulator_config = convert_friction_for_simulator(terrain_config, simulator_config)
    components = build_all_components(
        terrain_config=terrain_config,
        scene_lib_config=scene_lib_config,
        motion_lib_config=motion_lib_config,
        simulator_config=simulator_config,
        robot_config=robot_config,
        device=fabric.device,
        save_dir=getattr(env_config, "save_dir", None),
    )
    env = get_class(env_config._target_)(
        config=env_config,
        robot_config=robot_config,
        device=fabric.device,
        terrain=components["terrain"],
        scene_lib=components["scene_lib"],
        motion_lib=components["motion_lib"],
        simulator=components["simulator"],
    )
    agent = get_class(agent_config._target_)(config=agent_config, env=env, fabric=fabric, root_dir=ckpt.parent)
    agent.setup()
    agent.load(str(ckpt), load_env=False, load_training_state=False)
    agent.eval()
    return sim_name, (env, agent)


def _found(name: Any, ckpt: Path) -> Any:
    """A relative path that is not found from here, tried from the checkpoint's parent directories."""
    if not isinstance(name, str) or not name or Path(name).is_absolute() or Path(name).exists():
        return name
    for parent in ckpt.resolve().parents:
        if (parent / name).exists():
            return str(parent / name)
    return name


def _import_simulator(name: str) -> None:
    """The simulator backend's own package, so that a missing one is named in one line."""
    from protomotions.utils.simulator_imports import import_simulator_before_torch

    packages = {"mujoco": "mujoco", "isaacgym": "isaacgym", "isaaclab": "isaaclab", "genesis": "genesis", "newton": "newton"}
    try:
        if name in packages:
            importlib.import_module(packages[name])
        import_simulator_before_torch(name)
        importlib.import_module(f"protomotions.simulator.{name}.simulator")
    except ImportError as e:
        raise EnvError(f"simulator {name!r} is not installed here ({e}); choose another with simulator:=mujoco") from None


def _unit_gears(simulator: Any) -> None:
    model = getattr(simulator, "model", None)
    gear = getattr(model, "actuator_gear", None)
    if gear is not None and not np.all(gear[:, 0] == 1):
        log.warning(
            "MuJoCo backend: actuator gears %s set to 1 (ProtoMotions' PD conversion ignores them)",
            sorted({float(g) for g in gear[:, 0]}),
        )
        gear[:, 0] = 1


def _agent_policy(agent: Any, env: Any, *, name: str, sha256: str) -> Any:
    """The agent as a `Policy` on rollout's flat observations (split back into ProtoMotions' dict)."""
    import torch

    from rollout.policy import Policy

    dtypes = {k: d for k, d in env.obs_dtypes.items() if isinstance(d, torch.dtype)}
    device = env.device
    step = 0

    def act(obs: np.ndarray) -> np.ndarray:
        nonlocal step
        parts = env.unflatten_obs(obs)
        obs_dict = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device=device, dtype=dtypes.get(k, torch.float32)) for k, v in parts.items()}
        with torch.no_grad():
            agent.pre_collect_step(step)  # stateful agents (ASE latents) advance once per step
            obs_dict = agent.add_agent_info_to_obs(obs_dict)
            out = agent.model(agent.obs_dict_to_tensordict(obs_dict))
            action = out["mean_action"] if "mean_action" in out.keys() else out["action"]
        step += 1
        return action.detach().cpu().numpy().astype(np.float32, copy=False)

    return Policy(act, name=name, format="protomotions", sha256=sha256, obs_dim=env.info.obs_dim, act_dim=env.info.act_dim)
