"""Launch graphs: defined once in a launch file, run by `ros2 launch` or the embedded launcher."""

from rollout.launching.description import Arg, NodeSpec, parse_launch_arguments, ros_launch_description
from rollout.launching.runner import Launcher, find_launch_file, launch, load_launch_file

__all__ = [
    "Arg",
    "Launcher",
    "NodeSpec",
    "find_launch_file",
    "launch",
    "load_launch_file",
    "parse_launch_arguments",
    "ros_launch_description",
]
