"""Record a rollout: the sim/policy node and the recorder (and a live viewer with view:=true).

    rollout launch record.launch.py num_envs:=16 steps:=200
    rollout launch record.launch.py num_envs:=16 steps:=1000 policy:=demo view:=true
    ros2 launch rollout record.launch.py num_envs:=16 steps:=200 policy:=policy.pt2
    rollout launch record.launch.py env:=protomotions:results/mimic/last.ckpt trust_checkpoint:=true num_envs:=1

Ends by itself after `steps` (default 500) or `duration` seconds, and prints where the bag is;
with view:=true the page stays open after the recording ends (keep_view:=false: it closes with it)
and Ctrl-C ends the launch.
"""

from rollout.errors import LaunchError
from rollout.launching import Arg, NodeSpec, ros_launch_description
from rollout.sim.factory import is_humanoid

ARGS = [
    Arg("num_envs", "16", "parallel envs", int, minimum=1),
    Arg("steps", "", "control steps to record (default 500 unless duration is given; 0: until Ctrl-C)", int,
        minimum=0, optional=True),
    Arg("duration", "0", "seconds of sim time to record, instead of steps", float, minimum=0),
    Arg("env", "mujoco:Humanoid-v5", "env: mujoco:Humanoid-v5, gym:<id>, protomotions:<last.ckpt> or module:factory"),
    Arg("trust_checkpoint", "false", "load a ProtoMotions checkpoint (a pickle: only files you trust)", bool),
    Arg("simulator", "", "ProtoMotions simulator for a checkpoint (default: the one it was trained with)"),
    Arg("policy", "auto", "checkpoint (.pt2, .pt + .json, TorchScript), module:callable, demo, zero or random "
        "(auto: the shipped demo walker on the humanoid, a checkpoint env's own agent, random on other envs)"),
    Arg("seed", "0", "reset seed", int),
    Arg("out", "", "bag path (default rollouts/rollout_<time>)"),
    Arg("compression", "none", "chunk compression", choices=("none", "lz4", "zstd")),
    Arg("tf_envs", "0", "envs drawn in Foxglove through /tf, e.g. 0,1,2"),
    Arg("realtime", "auto", "step at the env's dt (auto: when viewing) instead of as fast as possible",
        choices=("auto", "true", "false")),
    Arg("view", "false", "also open the live web viewer", bool),
    Arg("keep_view", "true", "with view:=true, keep the page open after the recording ends (Ctrl-C quits)", bool),
    Arg("port", "8080", "viewer port", int, minimum=1),
    Arg("video", "", "also write an MP4 of the run to this path"),
    Arg("foxglove", "false", "also serve the live graph to Foxglove (ws://127.0.0.1:<foxglove_port>)", bool),
    Arg("foxglove_port", "8765", "Foxglove WebSocket port", int, minimum=1),
    Arg("namespace", "", "publish under /<namespace> (one per rank or host; bags of several read as one rollout)"),
]
DEFAULT_STEPS = 500


def policy_spec(policy: str, env: str) -> str:
    if policy != "auto":
        return policy
    return "demo" if is_humanoid(env) else "random"


def step_count(a: dict) -> int:
    """`steps` when given; else 500, or 0 when `duration` says how long instead (both: an error)."""
    if a["steps"] is not None and a["duration"] > 0:
        raise LaunchError("give steps:= or duration:=, not both")
    if a["steps"] is not None:
        return a["steps"]
    return 0 if a["duration"] > 0 else DEFAULT_STEPS


def nodes(a: dict) -> list[NodeSpec]:
    view, foxglove = a["view"], a["foxglove"]
    realtime = (view or foxglove) if a["realtime"] == "auto" else a["realtime"] == "true"
    video = a["video"] != ""
    if a["namespace"] and (view or video):
        raise LaunchError("namespace:= records only: the viewer and the video take the plain /rollout topics")
    keep = view and a["keep_view"]
    takers = 1 + video + view  # recorder, encoder, viewer: nothing is stepped before they all listen
    graph = [
        NodeSpec("recorder", params={"out": a["out"], "compression": a["compression"], "expected_steps": step_count(a)}),
        NodeSpec(
            "sim",
            params={
                "num_envs": a["num_envs"],
                "steps": step_count(a),
                "duration": a["duration"],
                "env": a["env"],
                "policy": policy_spec(a["policy"], a["env"]),
                "trust_checkpoint": a["trust_checkpoint"],
                "simulator": a["simulator"],
                "seed": a["seed"],
                "tf_envs": a["tf_envs"],
                "realtime": realtime,
                "wait_for_subscribers": takers,
                "namespace": a["namespace"],
            },
            shutdown_on_exit=not keep,
        ),
    ]
    if view:
        # kept open, the page's node ends the launch (Ctrl-C); the bag is closed then
        graph.append(NodeSpec("viser_bridge", params={"port": a["port"]}, shutdown_on_exit=keep))
    if foxglove:  # not a taker: it subscribes only while a Foxglove client looks
        graph.append(NodeSpec("foxglove_bridge", params={"port": a["foxglove_port"]}))
    if video:  # stopped with the sim, it first encodes the frames still queued; it waits for the
        # robot while the sim loads torch and the policy (tens of seconds on a busy machine)
        params = {"out": a["video"], "drain_timeout": 110.0, "robot_timeout": 120.0}
        graph.append(NodeSpec("video_encoder", params=params, stop_timeout=120.0))
    return graph


def generate_launch_description():
    return ros_launch_description(ARGS, nodes)
