"""A launch graph defined once: arguments, and the nodes they turn into.

A launch file lists its `Arg`s and a function from argument values to `NodeSpec`s, and ends with

    def generate_launch_description():
        return ros_launch_description(ARGS, nodes)

`ros2 launch` calls that and gets real `launch` actions; `rollout launch` reads `ARGS` and
`nodes` directly and runs the same graph with the embedded launcher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollout.errors import LaunchError
from rollout.runtime.params import split_name_value
from rollout.suggest import did_you_mean


@dataclass(frozen=True)
class Arg:
    """A launch argument, `name:=value` on the command line."""

    name: str
    default: str
    description: str = ""


@dataclass(frozen=True)
class NodeSpec:
    """One node process: `ros2 run rollout <executable>` with parameters."""

    executable: str
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    arguments: tuple[str, ...] = ()
    shutdown_on_exit: bool = False
    """When this node exits, stop the whole launch (like launch's `on_exit=Shutdown()`)."""
    stop_timeout: float = 10.0
    """Seconds this node gets to finish its work (files, queued frames) after SIGTERM, before SIGKILL."""

    @property
    def node_name(self) -> str:
        return self.name or self.executable

    def ros_args(self) -> list[str]:
        """`--ros-args -r __node:=NAME -p k:=v ...`, with values as a launch file writes them."""
        out = ["--ros-args", "-r", f"__node:={self.node_name}"]
        for key, value in self.params.items():
            out += ["-p", f"{key}:={param_text(value)}"]
        return out


def param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(param_text(v) for v in value) + "]"
    return str(value)


GraphFn = Callable[[dict[str, str]], Sequence[NodeSpec]]


def parse_launch_arguments(args: Sequence[Arg], tokens: Sequence[str]) -> dict[str, str]:
    """`['num_envs:=16', ...]` -> every argument's value (defaults filled in); unknown names fail."""
    values = {a.name: a.default for a in args}
    for token in tokens:
        name, value = split_name_value(token, "launch argument")
        if name not in values:
            known = ", ".join(a.name for a in args) or "none"
            hint = did_you_mean(name, values)
            raise LaunchError(f"unknown launch argument {name!r}{hint}; this launch file takes: {known}")
        values[name] = value
    return values


def describe_arguments(args: Sequence[Arg]) -> str:
    width = max((len(a.name) + len(a.default) for a in args), default=0) + 4
    return "\n".join(f"  {(a.name + ':=' + a.default):<{width}} {a.description}" for a in args)


def ros_launch_description(args: Sequence[Arg], nodes: GraphFn) -> Any:
    """The same graph as a `launch.LaunchDescription`, for `ros2 launch` (needs ROS 2's launch)."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.events import Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def build(context: Any) -> list[Any]:
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in args}
        actions: list[Any] = []
        for spec in nodes(values):
            node = Node(
                package="rollout",
                executable=spec.executable,
                name=spec.node_name,
                output="screen",
                arguments=list(spec.arguments),
                parameters=[{k: param_text(v) for k, v in spec.params.items()}] if spec.params else [],
            )
            actions.append(node)
            if spec.shutdown_on_exit:
                actions.append(
                    RegisterEventHandler(OnProcessExit(target_action=node, on_exit=[EmitEvent(event=Shutdown())]))
                )
        return actions

    declared = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in args]
    return LaunchDescription([*declared, OpaqueFunction(function=build)])
