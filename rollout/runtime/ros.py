"""The rclpy backend: the same Node API over ROS 2, moving the same CDR bytes.

Used when ROS 2 is sourced and rclpy imports (or `ROLLOUT_BACKEND=rclpy`). Publishers and
subscriptions carry serialized messages (`publish(bytes)`, `raw=True`), so our codec does all
(de)serialization exactly as on zenoh; rclpy only needs the generated type for its type support
(`rollout_msgs` built with colcon). Not exercised here: rclpy cannot be installed on these
machines (its tests skip).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import time
from collections.abc import Callable
from typing import Any

import rclpy
import rclpy.node
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile as RclQoS
from rclpy.serialization import deserialize_message, serialize_message

from rollout.codec import deserialize, get_service, serialize
from rollout.errors import RolloutError
from rollout.runtime.node import TopicEndpoint
from rollout.runtime.params import resolve
from rollout.runtime.qos import QoSProfile, as_qos

_stop_code = 0


def ros_class(type_name: str) -> Any:
    """`pkg/msg/Name` -> the rosidl-generated Python class (for rclpy's type support)."""
    pkg, kind, name = type_name.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError) as e:
        raise RolloutError(f"{type_name} is not built for ROS 2 here ({e}); colcon build rollout_msgs and source it") from None


def rcl_qos(qos: QoSProfile) -> RclQoS:
    return RclQoS(
        depth=max(qos.depth, 1),
        history=int(qos.history),
        reliability=int(qos.reliability),
        durability=int(qos.durability),
    )


def _name(msg_type: type | str) -> str:
    return msg_type if isinstance(msg_type, str) else msg_type.__msgtype__


class _Publisher:
    def __init__(self, pub: Any, msg_type: type | str) -> None:
        self._pub = pub
        self.topic_name = pub.topic_name
        from rollout.codec import get_type

        self.msg_type = get_type(_name(msg_type))

    def publish(self, msg: Any) -> None:
        self._pub.publish(bytes(msg) if isinstance(msg, (bytes, bytearray, memoryview)) else serialize(msg))

    def get_subscription_count(self) -> int:
        return self._pub.get_subscription_count()

    def wait_for_subscribers(self, count: int, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.get_subscription_count() < count:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


class _Client:
    """An rclpy client that takes and returns our message objects."""

    def __init__(self, client: Any, ours: Any, theirs: Any) -> None:
        self._client, self._ours, self._theirs = client, ours, theirs
        self.srv_type = ours
        self.srv_name = client.srv_name

    def service_is_ready(self) -> bool:
        return self._client.service_is_ready()

    def wait_for_service(self, timeout_sec: float | None = None) -> bool:
        return self._client.wait_for_service(timeout_sec=timeout_sec)

    def call_async(self, request: Any, **_: Any) -> Any:
        from rollout.runtime.node import Future

        future = Future()
        inner = self._client.call_async(deserialize_message(serialize(request), self._theirs.Request))
        inner.add_done_callback(
            lambda f: future.set_result(deserialize(serialize_message(f.result()), self._ours.Response))
        )
        return future

    def call(self, request: Any, timeout_sec: float = 10.0) -> Any:
        return self.call_async(request).result(timeout_sec)


class Node(rclpy.node.Node):
    """rollout's Node API on an rclpy node (see rollout.runtime.node.Node)."""

    def __init__(
        self,
        node_name: str,
        *,
        namespace: str = "",
        cli_args: list[str] | None = None,
        params: type | None = None,
        parameter_overrides: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(node_name, namespace=namespace or None, cli_args=None)
        if params is not None:
            overrides = {}
            for f in dataclasses.fields(params):
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                value = self.declare_parameter(f.name, default).value
                if value != default:
                    overrides[f.name] = str(value).lower() if isinstance(value, bool) else str(value)
            self.params = resolve(params, overrides)

    def create_publisher(self, msg_type: type | str, topic: str, qos_profile: QoSProfile | int) -> _Publisher:  # type: ignore[override]
        pub = super().create_publisher(ros_class(_name(msg_type)), topic, rcl_qos(as_qos(qos_profile)))
        return _Publisher(pub, msg_type)

    def create_subscription(  # type: ignore[override]
        self, msg_type: type | str, topic: str, callback: Callable[..., Any], qos_profile: QoSProfile | int, *, raw: bool = False
    ) -> Any:
        from rollout.codec import get_type

        ours = get_type(_name(msg_type))

        def deliver(data: bytes) -> None:
            callback(data if raw else deserialize(data, ours))

        return super().create_subscription(
            ros_class(_name(msg_type)), topic, deliver, rcl_qos(as_qos(qos_profile)), raw=True
        )

    def create_service(self, srv_type: Any, srv_name: str, callback: Callable[[Any, Any], Any]) -> Any:  # type: ignore[override]
        ours = get_service(srv_type) if isinstance(srv_type, str) else srv_type
        theirs = ros_class(ours.name)

        def handle(request: Any, response: Any) -> Any:
            mine = callback(deserialize(serialize_message(request), ours.Request), ours.Response())
            return deserialize_message(serialize(mine), theirs.Response)

        return super().create_service(theirs, srv_name, handle)

    def create_client(self, srv_type: Any, srv_name: str) -> _Client:  # type: ignore[override]
        ours = get_service(srv_type) if isinstance(srv_type, str) else srv_type
        theirs = ros_class(ours.name)
        return _Client(super().create_client(theirs, srv_name), ours, theirs)

    def call_soon(self, callback: Callable[[], None]) -> None:
        timer: Any = None

        def once() -> None:
            timer.cancel()
            callback()

        timer = self.create_timer(0.0, once)

    def spin_while(self, busy: Callable[[], bool], timeout_sec: float) -> None:
        deadline = time.monotonic() + timeout_sec
        while busy() and time.monotonic() < deadline and rclpy.ok():
            rclpy.spin_once(self, timeout_sec=0.02)

    def publishers(self) -> list[TopicEndpoint]:
        out = []
        for topic, types in self.get_topic_names_and_types():
            for info in self.get_publishers_info_by_topic(topic):
                q = info.qos_profile
                qos = QoSProfile(
                    depth=q.depth, reliability=int(q.reliability), durability=int(q.durability), history=int(q.history)
                )
                out.append(TopicEndpoint(topic, types[0], "", qos, info.node_name))
        return out


def init(args: list[str] | None = None, **_: Any) -> None:
    if not rclpy.ok():
        rclpy.init(args=args)


def ok() -> bool:
    return rclpy.ok()


def shutdown(exit_code: int = 0) -> None:
    global _stop_code
    _stop_code = exit_code
    if rclpy.ok():
        rclpy.shutdown()


def close() -> None:
    if rclpy.ok():
        rclpy.shutdown()


def spin(node: Node | None = None) -> None:
    rclpy.spin(node)


def spin_once(node: Node | None = None, *, timeout_sec: float | None = None) -> bool:
    rclpy.spin_once(node, timeout_sec=timeout_sec)
    return True


def run_node(factory: Callable[..., Node], args: list[str] | None = None) -> None:
    argv = sys.argv if args is None else ["node", *args]
    code, node = 0, None
    try:
        init(argv)
        node = factory(argv[1:]) if inspect.signature(factory).parameters else factory()
        spin(node)
        code = _stop_code
    except RolloutError as e:
        print(f"{getattr(factory, '__name__', 'node')}: error: {e}", file=sys.stderr, flush=True)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        code = _stop_code
    finally:
        if node is not None:
            node.destroy_node()
        close()
    raise SystemExit(code)
