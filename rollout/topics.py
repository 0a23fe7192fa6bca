"""The topic and service names of the rollout graph: the contract between nodes, bags and tools.

Rollout data lives under /rollout; the ROS-standard topics (/tf, /robot_description) keep the
names Foxglove and RViz look for.
"""

STATE = "/rollout/state"  # rollout_msgs/State, every control step
ACTION = "/rollout/action"  # rollout_msgs/Action, every control step
REWARD_TERMS = "/rollout/reward_terms"  # rollout_msgs/RewardTerms, every control step
EPISODES = "/rollout/episodes"  # rollout_msgs/EpisodeEvents, on steps where episodes end
ROBOT = "/rollout/robot"  # rollout_msgs/RobotDescription, latched
BASE_POSES = "/rollout/base_poses"  # geometry_msgs/PoseArray, every env's base, every step
TF = "/tf"  # tf2_msgs/TFMessage, bodies of the `tf_envs` subset
ROBOT_DESCRIPTION = "/robot_description"  # std_msgs/String URDF of the `tf_envs` subset, latched
CAMERA = "/rollout/camera/image/compressed"  # sensor_msgs/CompressedImage, when a sim renders

PLAYBACK_STATUS = "/rollout/playback/status"  # rollout_msgs/PlaybackStatus, replay only
TIMELINE = "/rollout/playback/timeline"  # rollout_msgs/Timeline, replay only, latched

# Everything the recorder takes by default: what the sim publishes, in the order `ros2 bag info` lists it.
RECORDED = (ROBOT, STATE, ACTION, REWARD_TERMS, EPISODES, BASE_POSES, TF, ROBOT_DESCRIPTION, CAMERA)

POLICY_ENABLED_SERVICE = "/sim/set_policy_enabled"  # std_srvs/SetBool
REPLAY_NODE = "replay"  # rosbag2-style player services live under /replay/<verb>


def namespaced(topic: str, namespace: str) -> str:
    """`topic` under a namespace ("rank0" or "/host1/rank0"): /rank0/rollout/state. Sims that share
    a graph (training ranks, hosts) publish under their own namespace so their topics stay apart."""
    ns = namespace.strip("/")
    return f"/{ns}{topic}" if ns else topic


def split_namespace(topic: str) -> tuple[str, str] | None:
    """(namespace, rollout topic) for a recorded rollout topic under any namespace, else None:
    "/rank0/rollout/state" -> ("rank0", "/rollout/state"), "/rollout/state" -> ("", "/rollout/state")."""
    for base in RECORDED:
        if topic == base:
            return "", base
        if topic.endswith(base) and topic[: -len(base)].startswith("/") and len(topic) > len(base) + 1:
            return topic[1 : -len(base)], base
    return None
