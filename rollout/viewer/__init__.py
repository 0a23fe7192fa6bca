"""The web viewer (viser), without middleware: `nodes/viser_bridge.py` feeds it from topics.

from rollout.viewer import Viewer
viewer = Viewer(port=8080, callbacks=ViewerCallbacks(seek_step=lambda step: ...))
viewer.on_robot(robot_description); viewer.on_state(state)
"""

from rollout.viewer.buffers import EpisodeLog, PoseHistory, RewardSeries, Trails, instance_transforms, neighbour_step
from rollout.viewer.scene import RobotInfo, RobotScene
from rollout.viewer.controls import PRESET_LABELS, ViewerCallbacks
from rollout.viewer.server import check_port
from rollout.viewer.viewer import Viewer

__all__ = [
    "PRESET_LABELS",
    "EpisodeLog",
    "PoseHistory",
    "RewardSeries",
    "RobotInfo",
    "RobotScene",
    "Trails",
    "Viewer",
    "ViewerCallbacks",
    "check_port",
    "instance_transforms",
    "neighbour_step",
]
