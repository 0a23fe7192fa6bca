"""Replay a recorded bag into the web viewer (and into an MP4 with video:=out.mp4).

    rollout launch replay.launch.py bag:=rollouts/rollout_20250101_120000
    rollout launch replay.launch.py bag:=latest
    rollout launch replay.launch.py bag:=BAG video:=out.mp4 preset:=Side
    rollout launch replay.launch.py bag:=A compare:=B      # B drawn as a ghost over A, aligned by step
    rollout launch replay.launch.py bag:=rollouts/rank0,rollouts/rank1   # per-rank shards as one rollout
    rollout launch replay.launch.py bag:=BIG draw_envs:=0-15,3000   # which envs of a 4,096-env run to draw
    ros2 launch rollout replay.launch.py bag:=BAG

With `video`, the replay runs as fast as the encoder takes frames (not by the wall clock), the
viewer stays off unless view:=true, and everything exits when the video is written.
"""

from rollout.launching import Arg, NodeSpec, ros_launch_description
from rollout.runtime.params import parse_env_ids

ARGS = [
    Arg("bag", None, "bag to play: a rosbag2 folder, an .mcap file, or latest (the newest under rollouts/); "
        "several, comma separated, play as one rollout (per-rank shards)"),
    Arg("compare", "", "a second bag to play along, aligned by step: a ghost over the first, in every plot and a summary"),
    Arg("rate", "1.0", "playback speed, 0.1 to 4", float, minimum=0.1),
    Arg("loop", "false", "start again at the end", bool),
    Arg("start_paused", "false", "open paused at the first step", bool),
    Arg("start_offset", "0", "seconds into the bag to start", float, minimum=0),
    Arg("view", "true", "open the web viewer (off when writing a video)", bool),
    Arg("host", "127.0.0.1", "viewer address (0.0.0.0 to share on the network)"),
    Arg("port", "8080", "viewer port", int, minimum=1),
    Arg("max_envs", "64", "envs the viewer draws at most (plots and Find cover every env)", int, minimum=1),
    Arg("draw_envs", "", "envs the viewer draws, e.g. 0-15,3000 (default: the first max_envs)"),
    Arg("video", "", "write an MP4 to this path, then exit"),
    Arg("preset", "Follow", "video camera", choices=("Top", "Side", "Front", "Follow")),
    Arg("fps", "0", "video frames per second (0: one frame per recorded step)", float, minimum=0),
    Arg("width", "640", "video width", int, minimum=16),
    Arg("height", "480", "video height", int, minimum=16),
    Arg("envs", "0", "envs in the video, e.g. 0-3 for a grid of four"),
    Arg("foxglove", "false", "also serve the replay to Foxglove (ws://<host>:<foxglove_port>), player services included", bool),
    Arg("foxglove_port", "8765", "Foxglove WebSocket port", int, minimum=1),
]


def drawn_terms(a: dict) -> dict:
    """The replay's env_ids: the drawn envs get every term in the timeline (every env has its total)."""
    ids = parse_env_ids(a["draw_envs"], "draw_envs")[: a["max_envs"]]
    return {"env_ids": ids} if ids else {}


def nodes(a: dict) -> list[NodeSpec]:
    video = a["video"] != ""
    view = a["view"] and not video
    graph = [
        NodeSpec(
            "replay",
            params={
                "bag": a["bag"],
                "rate": 0.0 if video else a["rate"],  # 0: paced by the encoder, not the wall clock
                "loop": False if video else a["loop"],
                # with the page on, paused until it has opened (else playback runs ahead of it)
                "start_paused": False if video else (view or a["start_paused"]),
                "start_offset": a["start_offset"],
                "exit_at_end": False,  # with a video the encoder ends the launch once it has every frame
                "wait_for_subscribers": 1 if video else 0,
                "compare": a["compare"],
                **drawn_terms(a),
            },
            shutdown_on_exit=not video,
        ),
    ]
    if view:
        play_on_connect = not a["start_paused"]
        graph.append(
            NodeSpec(
                "viser_bridge",
                params={
                    "host": a["host"],
                    "port": a["port"],
                    "play_on_connect": play_on_connect,
                    "max_envs": a["max_envs"],
                    "envs": a["draw_envs"],
                },
            )
        )
    if a["foxglove"]:
        graph.append(NodeSpec("foxglove_bridge", params={"host": a["host"], "port": a["foxglove_port"]}))
    if video:
        graph.append(
            NodeSpec(
                "video_encoder",
                params={
                    "out": a["video"],
                    "preset": a["preset"],
                    "fps": a["fps"],
                    "width": a["width"],
                    "height": a["height"],
                    "envs": a["envs"],
                },
                shutdown_on_exit=True,
            )
        )
    return graph


def generate_launch_description():
    return ros_launch_description(ARGS, nodes)
