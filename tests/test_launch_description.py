"""What the launch files hand to ROS 2's `launch`/`launch_ros` under `ros2 launch`.

Upstream launch and launch_ros are not on PyPI (the PyPI `launch` is another project), so these
tests put recording stand-ins for exactly the classes `ros_launch_description` uses in
`sys.modules` and check what it builds: the declared arguments, the node actions, and each
parameter value with the Python type its node declares (launch_ros YAML-dumps values: a str '4'
stays a string, and rclpy refuses it for an integer parameter). Typed values are also checked
against the typed ROS parameters the rclpy backend declares, when rclpy is there.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from rollout.errors import LaunchError
from rollout.launching.runner import load_launch_file

LAUNCH = Path(__file__).resolve().parents[1] / "launch"


class Recorded:
    """An action or substitution as its constructor was called."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class LaunchConfiguration(Recorded):
    def perform(self, context: dict[str, str]) -> str:
        return context[self.args[0]]


def fake_launch() -> dict[str, types.ModuleType]:
    mods = {name: types.ModuleType(name) for name in (
        "launch", "launch.actions", "launch.event_handlers", "launch.events", "launch.substitutions",
        "launch_ros", "launch_ros.actions",
    )}
    mods["launch"].LaunchDescription = type("LaunchDescription", (Recorded,), {})
    for name in ("DeclareLaunchArgument", "EmitEvent", "OpaqueFunction", "RegisterEventHandler"):
        setattr(mods["launch.actions"], name, type(name, (Recorded,), {}))
    mods["launch.event_handlers"].OnProcessExit = type("OnProcessExit", (Recorded,), {})
    mods["launch.events"].Shutdown = type("Shutdown", (Recorded,), {})
    mods["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    mods["launch_ros.actions"].Node = type("Node", (Recorded,), {})
    return mods


@pytest.fixture
def described(monkeypatch: pytest.MonkeyPatch):
    """generate_launch_description() of a launch file: (declared arguments by name, graph builder)."""
    for name, mod in fake_launch().items():
        monkeypatch.setitem(sys.modules, name, mod)

    def describe(file: str):
        ld = load_launch_file(LAUNCH / file).generate_launch_description()
        entities = ld.args[0]
        declared = {e.args[0]: e.kwargs for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
        (opaque,) = [e for e in entities if type(e).__name__ == "OpaqueFunction"]

        def build(**given: str) -> list[Recorded]:
            # launch hands the OpaqueFunction every argument as text: the default unless given
            context = {name: given.get(name, kw.get("default_value", "")) for name, kw in declared.items()}
            return opaque.kwargs["function"](context)

        return declared, build

    return describe


def nodes_of(actions: list[Recorded]) -> dict[str, dict[str, Any]]:
    """Node actions by executable -> their parameter dict (launch_ros's `parameters=[{...}]`)."""
    out = {}
    for a in actions:
        if type(a).__name__ == "Node":
            assert a.kwargs["package"] == "rollout"
            (params,) = a.kwargs["parameters"]
            out[a.kwargs["executable"]] = params
    return out


def params_class(executable: str) -> type:
    module = importlib.import_module(f"rollout.nodes.{executable}")
    (cls,) = [v for k, v in vars(module).items() if k.endswith("Params") and dataclasses.is_dataclass(v)]
    return cls


def assert_declared_types(nodes: dict[str, dict[str, Any]]) -> None:
    """Every value has exactly the Python type of its node's parameter field (bool is not an int)."""
    for executable, params in nodes.items():
        hints = typing.get_type_hints(params_class(executable))
        for name, value in params.items():
            assert name in hints, f"{executable} has no parameter {name}"
            want = [a for a in typing.get_args(hints[name]) if a is not type(None)] or [hints[name]]
            assert type(value) in want, f"{executable}.{name} = {value!r} ({type(value).__name__}), declared {hints[name]}"


def test_record_launch_hands_typed_parameters(described) -> None:
    declared, build = described("record.launch.py")
    assert declared["num_envs"]["default_value"] == "16"
    assert "true" in declared["view"]["choices"] and "maybe" not in declared["view"]["choices"]
    assert set(declared["realtime"]["choices"]) >= {"auto", "true", "false"}
    actions = build(num_envs="4", steps="200", view="true", video="/tmp/x.mp4", seed="3")
    nodes = nodes_of(actions)
    assert set(nodes) == {"recorder", "sim", "viser_bridge", "video_encoder"}
    sim = nodes["sim"]
    assert (sim["num_envs"], sim["steps"], sim["seed"], sim["realtime"], sim["wait_for_subscribers"]) == (4, 200, 3, True, 3)
    assert type(sim["num_envs"]) is int and type(sim["realtime"]) is bool and type(sim["duration"]) is float
    assert sim["tf_envs"] == "0" and type(sim["tf_envs"]) is str  # a str field stays text, even when it looks like a number
    assert nodes["viser_bridge"] == {"port": 8080}
    assert_declared_types(nodes)
    # launch escalates SIGINT to SIGTERM after sigterm_timeout: the encoder gets time to draw what is queued
    grace = {a.kwargs["executable"]: float(a.kwargs["sigterm_timeout"]) for a in actions if type(a).__name__ == "Node"}
    assert grace["video_encoder"] >= 100 and grace["sim"] == 10
    # with the page open the launch ends with the viewer (the page outlives the recording) ...
    def ends_with(actions) -> list[str]:
        handlers = [a for a in actions if type(a).__name__ == "RegisterEventHandler"]
        return [h.args[0].kwargs["target_action"].kwargs["executable"] for h in handlers]

    assert ends_with(actions) == ["viser_bridge"]
    # ... and with the sim when the page closes with it, or there is none
    assert ends_with(build(view="true", keep_view="false")) == ["sim"]
    assert ends_with(build()) == ["sim"]


def test_record_duration_is_honoured_and_steps_default_otherwise(described) -> None:
    _, build = described("record.launch.py")
    assert nodes_of(build())["sim"]["steps"] == 500
    sim = nodes_of(build(duration="5"))["sim"]
    assert (sim["steps"], sim["duration"]) == (0, 5.0)
    with pytest.raises(LaunchError, match="not both"):
        build(duration="5", steps="10")


def test_replay_launch_hands_typed_parameters(described) -> None:
    declared, build = described("replay.launch.py")
    assert "default_value" not in declared["bag"]  # required: ros2 launch refuses to start without it
    nodes = nodes_of(build(bag="b", rate="2", loop="true"))
    assert set(nodes) == {"replay", "viser_bridge"}
    assert (nodes["replay"]["rate"], nodes["replay"]["loop"]) == (2.0, True)
    assert_declared_types(nodes)
    nodes = nodes_of(build(bag="b", draw_envs="0-2,3000", max_envs="3"))  # the drawn envs get every term
    assert nodes["viser_bridge"]["envs"] == "0-2,3000" and nodes["viser_bridge"]["max_envs"] == 3
    assert nodes["replay"]["env_ids"] == [0, 1, 2]
    nodes = nodes_of(build(bag="b", video="out.mp4", width="320", preset="side"))
    assert set(nodes) == {"replay", "video_encoder"}
    assert nodes["video_encoder"]["width"] == 320 and nodes["video_encoder"]["preset"] == "Side"
    assert nodes["replay"]["rate"] == 0.0 and nodes["replay"]["exit_at_end"] is False
    assert_declared_types(nodes)


@pytest.mark.parametrize(
    "file, arg, value, message",
    [
        ("record.launch.py", "num_envs", "abc", "'num_envs': 'abc' is not an integer"),
        ("record.launch.py", "num_envs", "0", "below the minimum 1"),
        ("record.launch.py", "duration", "nan", "'duration': 'nan' is out of range"),
        ("record.launch.py", "steps", "1e99", "'steps': '1e99' is not an integer"),
        ("record.launch.py", "steps", "99999999999999999999", "out of range"),
        ("record.launch.py", "realtime", "maybe", "'realtime': 'maybe' is not one of auto, true, false"),
        ("record.launch.py", "view", "maybe", "'view': 'maybe' is not one of true, false"),
        ("replay.launch.py", "rate", "fast", "'rate': 'fast' is not a number"),
    ],
)
def test_bad_values_are_one_clear_line(described, file: str, arg: str, value: str, message: str) -> None:
    """Under ros2 launch, choices are refused by launch itself; numbers by the OpaqueFunction (one line)."""
    declared, build = described(file)
    given = {"bag": "b"} if file.startswith("replay") else {}
    if "choices" in declared[arg]:
        assert value not in declared[arg]["choices"]
    with pytest.raises(LaunchError, match=message.replace("(", r"\(")):
        build(**given, **{arg: value})


def test_typed_values_are_what_the_rclpy_backend_declares(described) -> None:
    """rclpy's statically typed parameters accept each value as handed over (no str for an int)."""
    pytest.importorskip("rclpy", reason="rclpy does not import here (ROS 2 Jazzy not installed; .ci/run installs it)")
    from rclpy.parameter import Parameter

    from rollout.runtime.ros import ros_parameter_type

    _, build = described("record.launch.py")
    for executable, params in nodes_of(build(view="true", video="v.mp4")).items():
        hints = typing.get_type_hints(params_class(executable))
        for name, value in params.items():
            assert Parameter.Type.from_parameter_value(value).value == ros_parameter_type(hints[name]), (executable, name)
