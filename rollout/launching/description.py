"""A launch graph defined once: typed arguments, and the nodes they turn into.

A launch file lists its `Arg`s and a function from argument values to `NodeSpec`s, and ends with

    def generate_launch_description():
        return ros_launch_description(ARGS, nodes)

`ros2 launch` calls that and gets real `launch` actions; `rollout launch` reads `ARGS` and
`nodes` directly and runs the same graph with the embedded launcher. Under both, each argument is
checked and converted to its declared type before `nodes` sees it, and node parameters keep
their Python types on the way to the node (launch_ros would hand a `str` '4' to an int parameter).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollout.errors import LaunchError
from rollout.runtime.params import split_name_value
from rollout.suggest import did_you_mean

INT64 = 2**63 - 1
REQUIRED = None


@dataclass(frozen=True)
class Arg:
    """A launch argument, `name:=value` on the command line.

    kind: int, float, bool or str; choices: the only values allowed (as written); default None:
    the argument must be given; minimum: the smallest number allowed; optional: an empty value
    means "not given" (`nodes` sees None).
    """

    name: str
    default: str | None
    description: str = ""
    kind: type = str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    optional: bool = False

    def __post_init__(self) -> None:
        if self.kind is bool and not self.choices:
            object.__setattr__(self, "choices", ("true", "false"))

    @property
    def required(self) -> bool:
        return self.default is None

    def convert(self, text: str) -> Any:
        """The value of `name:=text` as its declared type, or a `LaunchError` saying what is allowed."""
        if self.optional and text == "":
            return None
        if self.choices and text.lower() not in [c.lower() for c in self.choices]:
            raise LaunchError(f"launch argument {self.name!r}: {text!r} is not one of {', '.join(self.choices)}")
        if self.kind is bool:
            return text.lower() == "true"
        if self.kind is str:
            return text if not self.choices else next(c for c in self.choices if c.lower() == text.lower())
        try:
            value = self.kind(text)
        except ValueError:
            what = "an integer" if self.kind is int else "a number"
            raise LaunchError(f"launch argument {self.name!r}: {text!r} is not {what}") from None
        if not math.isfinite(value) or abs(value) > INT64:
            raise LaunchError(f"launch argument {self.name!r}: {text!r} is out of range")
        if self.minimum is not None and value < self.minimum:
            raise LaunchError(f"launch argument {self.name!r}: {text!r} is below the minimum {self.minimum:g}")
        return value

    def help(self) -> str:
        kind = "|".join(self.choices) if self.choices else self.kind.__name__
        return f"{self.description} ({kind}{', required' if self.required else ''})"


@dataclass(frozen=True)
class NodeSpec:
    """One node process: `ros2 run rollout <executable>` with parameters (Python values, typed)."""

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

    def ros_parameters(self) -> dict[str, Any]:
        """The parameters as launch_ros gets them: bool, int, float, str or lists of them, never None."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items() if v is not None}


def param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(param_text(v) for v in value) + "]"
    return str(value)


GraphFn = Callable[[dict[str, Any]], Sequence[NodeSpec]]


def parse_launch_arguments(args: Sequence[Arg], tokens: Sequence[str]) -> dict[str, Any]:
    """`['num_envs:=16', ...]` -> every argument's typed value (defaults filled in); unknown names,
    missing required ones and bad values fail with one line."""
    given: dict[str, str] = {}
    by_name = {a.name: a for a in args}
    for token in tokens:
        name, value = split_name_value(token, "launch argument")
        if name not in by_name:
            known = ", ".join(a.name for a in args) or "none"
            hint = did_you_mean(name, by_name)
            raise LaunchError(f"unknown launch argument {name!r}{hint}; this launch file takes: {known}")
        given[name] = value
    return typed_values(args, given)


def typed_values(args: Sequence[Arg], given: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for a in args:
        text = given.get(a.name, a.default)
        if text is None:
            raise LaunchError(f"launch argument {a.name!r} is required ({a.description}): add {a.name}:=...")
        values[a.name] = a.convert(text)
    return values


def describe_arguments(args: Sequence[Arg]) -> str:
    width = max((len(a.name) + len(a.default or "") for a in args), default=0) + 4
    return "\n".join(f"  {(a.name + ':=' + (a.default or '')):<{width}} {a.help()}" for a in args)


def ros_launch_description(args: Sequence[Arg], nodes: GraphFn) -> Any:
    """The same graph as a `launch.LaunchDescription`, for `ros2 launch` (needs ROS 2's launch).

    Choices (bool arguments included) are checked by launch itself; numbers and the graph in an
    `OpaqueFunction`, where a `LaunchError` becomes launch's one-line error."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.events import Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def build(context: Any) -> list[Any]:
        values = typed_values(args, {a.name: LaunchConfiguration(a.name).perform(context) for a in args})
        actions: list[Any] = []
        for spec in nodes(values):
            node = Node(
                package="rollout",
                executable=spec.executable,
                name=spec.node_name,
                output="screen",
                arguments=list(spec.arguments),
                parameters=[spec.ros_parameters()] if spec.params else [],
                sigterm_timeout=f"{spec.stop_timeout:g}",  # launch's SIGINT -> SIGTERM grace (default 5 s)
            )
            actions.append(node)
            if spec.shutdown_on_exit:
                actions.append(
                    RegisterEventHandler(OnProcessExit(target_action=node, on_exit=[EmitEvent(event=Shutdown())]))
                )
        return actions

    declared = []
    for a in args:
        options: dict[str, Any] = {"description": a.help()}
        if not a.required:
            options["default_value"] = a.default
        if a.choices:  # launch compares as written: accept the usual spellings of each choice
            options["choices"] = sorted({v for c in a.choices for v in (c, c.lower(), c.capitalize(), c.upper())})
        declared.append(DeclareLaunchArgument(a.name, **options))
    return LaunchDescription([*declared, OpaqueFunction(function=build)])
