"""The web viewer (viser), without middleware: `nodes/viser_bridge.py` feeds it from topics.

from rollout.viewer import Viewer
viewer = Viewer(port=8080, seek_step=lambda step: ...)
viewer.on_robot(robot_description); viewer.on_state(state)
"""

from rollout.viewer.buffers import EpisodeLog, PoseHistory, RewardSeries, Trails, instance_transforms
from rollout.viewer.viewer import PRESET_LABELS, RobotInfo, Viewer, check_port

__all__ = [
    "PRESET_LABELS",
    "EpisodeLog",
    "PoseHistory",
    "RewardSeries",
    "RobotInfo",
    "Trails",
    "Viewer",
    "check_port",
    "instance_transforms",
]
