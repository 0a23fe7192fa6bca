"""Both backends implement the Node API written down in rollout.runtime.api, with the same signatures."""

from __future__ import annotations

import ast
import importlib
import inspect
import typing

import sys
from pathlib import Path

import pytest

from rollout.runtime import api

sys.path.insert(0, str(Path(__file__).parent / "ros2"))
from needs import missing  # noqa: E402

NODES = ["sim", "recorder", "replay", "viser_bridge", "video_encoder"]


def ros_backend():
    try:
        from rollout.runtime import ros
    except ImportError as e:
        missing(f"rclpy does not import here ({e}); .ci/run installs ROS 2 Jazzy and runs this")
    return ros


def backends() -> list:
    from rollout.runtime import node, zenoh_backend

    zenoh = {"module": zenoh_backend, "Node": node.Node, "Publisher": node.Publisher,
             "Subscription": node.Subscription, "Client": node.Client}
    ros = ros_backend()
    rclpy = {"module": ros, "Node": ros.Node, "Publisher": ros._Publisher,
             "Subscription": ros._Subscription, "Client": ros._Client}
    return [zenoh, rclpy]


def protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(value)
        for name, value in vars(protocol).items()
        if callable(value) and not name.startswith("_")
    }


def positional(sig: inspect.Signature) -> list[str]:
    return [p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


@pytest.mark.parametrize("which", ["Node", "Publisher", "Subscription", "Client"])
def test_both_backends_have_every_method_with_the_same_parameters(which: str) -> None:
    zenoh, rclpy = backends()
    for name, want in protocol_methods(getattr(api, which)).items():
        for backend in (zenoh, rclpy):
            cls = backend[which]
            assert hasattr(cls, name), f"{cls.__module__}.{cls.__name__} has no {name}"
            got = inspect.signature(getattr(cls, name))
            assert positional(got)[: len(positional(want))] == positional(want), (cls, name, got)
            for kw in (p for p in want.parameters.values() if p.kind == p.KEYWORD_ONLY):
                assert kw.name in got.parameters or any(
                    p.kind == p.VAR_KEYWORD for p in got.parameters.values()
                ), (cls, name, kw.name)


def test_both_backend_modules_have_the_module_functions() -> None:
    for backend in backends():
        module = backend["module"]
        for name in protocol_methods(api.Backend):
            assert callable(getattr(module, name, None)), f"{module.__name__} has no {name}()"
        assert module.Node is backend["Node"]


def test_both_node_constructors_take_the_same_arguments() -> None:
    zenoh, rclpy = backends()
    a, b = (inspect.signature(n["Node"].__init__).parameters for n in (zenoh, rclpy))
    assert list(a) == list(b)


def test_message_info_names_are_rclpys() -> None:
    assert set(typing.get_type_hints(api.MessageInfo)) >= {
        "publication_sequence_number", "source_timestamp", "received_timestamp"
    }


def instance_attributes(cls: type) -> set[str]:
    """Names a class assigns on `self` anywhere in its source."""
    tree = ast.parse(inspect.getsource(inspect.getmodule(cls)))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self" and isinstance(sub.ctx, ast.Store):
                    out.add(sub.attr)
    return out


@pytest.mark.parametrize("executable", NODES)
def test_no_node_shadows_what_rclpy_node_keeps_on_itself(executable: str) -> None:
    """Under rclpy our nodes are rclpy nodes: a `self._clients` of ours would replace rclpy's list."""
    ros = ros_backend()
    import rclpy.node

    module = importlib.import_module(f"rollout.nodes.{executable}")
    (cls,) = [v for v in vars(module).values() if inspect.isclass(v) and v.__module__ == module.__name__ and hasattr(v, "create_publisher")]
    rclpy_names = set(dir(rclpy.node.Node))
    rclpy.init(args=["x"])
    try:
        rclpy_names |= set(vars(rclpy.node.Node("shadow_probe")))
    finally:
        rclpy.shutdown()
    allowed = set(protocol_methods(api.Node)) | {"params"}
    ours = (instance_attributes(cls) | {k for k in vars(cls) if not k.startswith("__")}) - allowed
    assert not ours & rclpy_names, f"{cls.__name__} shadows rclpy.node.Node's {sorted(ours & rclpy_names)}"
    backend_own = instance_attributes(ros.Node) | {k for k in vars(ros.Node) if not k.startswith("__")}
    overridden = set(protocol_methods(api.Node)) | {"create_publisher", "create_subscription", "create_service",
                                                     "create_client", "destroy_node"}
    assert not (backend_own - overridden) & rclpy_names, sorted((backend_own - overridden) & rclpy_names)


def test_rclpy_parameters_are_typed_and_described_from_the_dataclass() -> None:
    """`ros2 param describe` shows each field's type and help text; a value keeps the field's type."""
    ros = ros_backend()
    from rcl_interfaces.msg import ParameterType

    sys.path.insert(0, str(Path(__file__).parent))
    from graph_nodes import TestParams

    ros.init(["x", "--ros-args", "-p", "rate:=3", "-p", "ids:=[4,5]"], signals=False)
    try:
        node = ros.Node("test_described", params=TestParams)
        described = {d.name: d for d in node.describe_parameters(["count", "rate", "label", "flag", "ids"])}
        assert described["count"].type == ParameterType.PARAMETER_INTEGER and described["count"].description == "How many."
        assert described["rate"].type == ParameterType.PARAMETER_DOUBLE
        assert described["flag"].type == ParameterType.PARAMETER_BOOL
        assert described["ids"].type == ParameterType.PARAMETER_INTEGER_ARRAY
        assert node.get_parameter("rate").value == 3.0 and node.params.rate == 3.0
        assert list(node.get_parameter("ids").value) == [4, 5] and node.params.ids == (4, 5)
        node.destroy_node()
    finally:
        ros.close()
