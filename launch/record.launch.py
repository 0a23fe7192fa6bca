"""Record a rollout: the sim/policy node and the recorder (and a live viewer with view:=true).

    rollout launch record.launch.py num_envs:=16 steps:=200
    ros2 launch rollout record.launch.py num_envs:=16 steps:=200 policy:=policy.pt2
    rollout launch record.launch.py env:=protomotions:results/mimic/last.ckpt trust_checkpoint:=true num_envs:=1

Ends by itself after `steps` (or `duration`) and prints where the bag is.
"""

from rollout.launching import Arg, NodeSpec, ros_launch_description

ARGS = [
    Arg("num_envs", "16", "parallel envs"),
    Arg("steps", "500", "control steps to record (0: until Ctrl-C)"),
    Arg("duration", "0", "seconds of sim time to record, instead of steps"),
    Arg("env", "mujoco:Humanoid-v5", "env: mujoco:Humanoid-v5, gym:<id>, protomotions:<last.ckpt> or module:factory"),
    Arg("trust_checkpoint", "false", "load a ProtoMotions checkpoint (a pickle: only files you trust)"),
    Arg("simulator", "", "ProtoMotions simulator for a checkpoint (default: the one it was trained with)"),
    Arg("policy", "random", "checkpoint (.pt2, .pt + .json, TorchScript), module:callable, zero or random; a protomotions: env runs its own agent unless told"),
    Arg("seed", "0", "reset seed"),
    Arg("out", "", "bag path (default rollouts/rollout_<time>)"),
    Arg("compression", "none", "none, lz4 or zstd"),
    Arg("tf_envs", "0", "envs drawn in Foxglove through /tf, e.g. 0,1,2"),
    Arg("realtime", "auto", "step at the env's dt (auto: when viewing) instead of as fast as possible"),
    Arg("view", "false", "also open the live web viewer"),
    Arg("port", "8080", "viewer port"),
    Arg("video", "", "also write an MP4 of the run to this path"),
]


def nodes(a: dict[str, str]) -> list[NodeSpec]:
    view = a["view"].lower() == "true"
    realtime = view if a["realtime"] == "auto" else a["realtime"].lower() == "true"
    video = a["video"] != ""
    takers = 1 + video + view  # recorder, encoder, viewer: nothing is stepped before they all listen
    graph = [
        NodeSpec("recorder", params={"out": a["out"], "compression": a["compression"]}),
        NodeSpec(
            "sim",
            params={
                "num_envs": a["num_envs"],
                "steps": a["steps"],
                "duration": a["duration"],
                "env": a["env"],
                "policy": a["policy"],
                "trust_checkpoint": a["trust_checkpoint"],
                "simulator": a["simulator"],
                "seed": a["seed"],
                "tf_envs": a["tf_envs"],
                "realtime": realtime,
                "wait_for_subscribers": takers,
            },
            shutdown_on_exit=True,
        ),
    ]
    if view:
        graph.append(NodeSpec("viser_bridge", params={"port": a["port"]}))
    if video:  # stopped with the sim, it first encodes the frames still queued
        graph.append(NodeSpec("video_encoder", params={"out": a["video"], "drain_timeout": 110.0}, stop_timeout=120.0))
    return graph


def generate_launch_description():
    return ros_launch_description(ARGS, nodes)
