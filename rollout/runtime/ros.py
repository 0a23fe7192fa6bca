"""The rclpy backend: the Node API of `rollout.runtime.api` over ROS 2 (any rmw; Jazzy's default is Fast DDS).

Chosen when ROS 2 is sourced and rclpy imports (or `ROLLOUT_BACKEND=rclpy`). It stays thin: topics
carry serialized messages, so our codec does all (de)serialization exactly as on zenoh, and rclpy
needs the generated classes only for their type support (`rollout_msgs` built with colcon).
rclpy's own generated classes pass straight through (its `Node.__init__` publishes
`ParameterEvent`s and serves parameter services with them).
"""

from __future__ import annotations

import dataclasses
import importlib
import signal
import sys
import threading
import time
import types
import typing
from collections import deque
from collections.abc import Callable
from typing import Any

import rclpy
import rclpy.node
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.duration import Duration
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile as RclQoS
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.signals import SignalHandlerOptions

from rollout.codec import deserialize, get_service, get_type, serialize
from rollout.errors import ParameterError, RolloutError, ServiceError
from rollout.runtime.api import MessageInfo
from rollout.runtime.node import Future, TopicEndpoint, _takes_info
from rollout.runtime.params import describe, field_docs, parse_ros_args, resolve
from rollout.runtime.qos import QoSProfile, as_qos
from rollout.runtime.running import run_node_on

FLUSH_MAX_S = 30.0  # what a node that ends waits for its readers to take what it published
PUBLISH_RETRY_S = 0.002  # a reliable keep-all writer whose reader is full refuses; we wait and try again


class _State:
    """This process's ROS 2 side: one executor for all our nodes, and the stop request."""

    def __init__(self) -> None:
        self.executor: SingleThreadedExecutor | None = None
        self.stop = False
        self.exit_code = 0
        self.spinning_thread: int | None = None


_state = _State()


def ros_class(type_name: str) -> Any:
    """`pkg/msg/Name` -> the rosidl-generated Python class (for rclpy's type support)."""
    pkg, kind, name = type_name.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError):
        raise RolloutError(
            f"{type_name} is not built for ROS 2 here: colcon build the package {pkg} and source its install/setup.bash"
        ) from None


def _ours(kind: Any) -> bool:
    """A type name or one of our codec's classes (else: a rosidl class of rclpy's own, passed through)."""
    return isinstance(kind, str) or hasattr(kind, "__msgtype__") or hasattr(kind, "Request") and hasattr(kind, "hash")


def rcl_qos(qos: QoSProfile) -> RclQoS:
    return RclQoS(
        depth=max(qos.depth, 1),
        history=int(qos.history),
        reliability=int(qos.reliability),
        durability=int(qos.durability),
    )


def _type_name(msg_type: type | str) -> str:
    return msg_type if isinstance(msg_type, str) else msg_type.__msgtype__


def _type_hash(info: Any) -> str:
    h = getattr(info, "topic_type_hash", None)
    if h is None or not getattr(h, "version", 0):
        return ""
    return f"RIHS{h.version:02d}_{bytes(h.value).hex()}"


class _Publisher:
    def __init__(self, pub: Any, msg_type: type | str) -> None:
        self._pub = pub
        self.topic_name = pub.topic_name
        self.msg_type = get_type(_type_name(msg_type))

    def publish(self, msg: Any) -> None:
        data = bytes(msg) if isinstance(msg, (bytes, bytearray, memoryview)) else serialize(msg)
        data = data if isinstance(data, bytes) else bytes(data)
        while True:
            try:
                self._pub.publish(data)
                return
            except _rclpy.RCLError:  # Fast DDS: a full keep-all history times out; publishers wait, never drop
                if not rclpy.ok():
                    raise
                time.sleep(PUBLISH_RETRY_S)

    def get_subscription_count(self) -> int:
        return self._pub.get_subscription_count()

    def flush(self, timeout_sec: float) -> bool:
        """Wait until every reader has acknowledged what was published: a DDS writer that goes
        away drops what is still unacknowledged (the last steps a slow recorder has not taken)."""
        return self._pub.wait_for_all_acked(Duration(nanoseconds=int(timeout_sec * 1e9)))

    def wait_for_subscribers(self, count: int, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.get_subscription_count() < count:
            if _state.stop or deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


class _Subscription:
    def __init__(self, node: rclpy.node.Node, sub: Any, topic: str) -> None:
        self._node, self._sub = node, sub
        self.topic_name = topic

    def pending(self) -> int:
        """1 when a message waits to be taken (DDS does not say how many), else 0."""
        ws = _rclpy.WaitSet(1, 0, 0, 0, 0, 0, self._node.context.handle)
        with self._sub.handle:
            ws.clear_entities()
            ws.add_subscription(self._sub.handle)
            ws.wait(0)
            return len(ws.get_ready_entities("subscription"))

    def destroy(self) -> None:
        self._node.destroy_subscription(self)


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

    def call_async(self, request: Any, **_: Any) -> Future:
        future = Future()
        inner = self._client.call_async(deserialize_message(serialize(request), self._theirs.Request))

        def done(f: Any) -> None:
            try:
                future.set_result(deserialize(serialize_message(f.result()), self._ours.Response))
            except Exception as e:
                future.set_exception(e)

        inner.add_done_callback(done)
        return future

    def call(self, request: Any, timeout_sec: float = 10.0) -> Any:
        """Call and wait: from another thread while the node spins, or spinning here meanwhile."""
        if not self.service_is_ready() and not self.wait_for_service(min(timeout_sec, 2.0)):
            raise ServiceError(f"service {self.srv_name} is not available")
        future = self.call_async(request)
        deadline = time.monotonic() + timeout_sec
        while not future.done() and time.monotonic() < deadline:
            if _state.spinning_thread in (None, threading.get_ident()) and _state.executor is not None:
                _state.executor.spin_once(timeout_sec=0.02)
            else:
                time.sleep(0.005)
        try:
            return future.result(0)
        except ServiceError:
            raise ServiceError(f"service {self.srv_name}: no response within {timeout_sec:g} s") from None


_ROS_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_ROS_ARRAYS = {
    bool: ParameterType.PARAMETER_BOOL_ARRAY,
    int: ParameterType.PARAMETER_INTEGER_ARRAY,
    float: ParameterType.PARAMETER_DOUBLE_ARRAY,
    str: ParameterType.PARAMETER_STRING_ARRAY,
}


def ros_parameter_type(annotation: Any) -> int:
    """The ROS parameter type of a dataclass field's annotation (Literal: its values' type)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return ros_parameter_type(options[0]) if len(options) == 1 else ParameterType.PARAMETER_STRING
    if origin is typing.Literal:
        return _ROS_TYPES.get(type(typing.get_args(annotation)[0]), ParameterType.PARAMETER_STRING)
    if origin in (list, tuple):
        return _ROS_ARRAYS.get((typing.get_args(annotation) or (str,))[0], ParameterType.PARAMETER_STRING_ARRAY)
    return _ROS_TYPES.get(annotation, ParameterType.PARAMETER_STRING)


def _ros_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class Node(rclpy.node.Node):
    """rollout's Node API (`rollout.runtime.api.Node`) on an rclpy node."""

    def __init__(
        self,
        node_name: str,
        *,
        namespace: str = "",
        cli_args: list[str] | None = None,
        params: type | None = None,
        parameter_overrides: dict[str, Any] | None = None,
    ) -> None:
        ros_part = _ros_part(cli_args)
        rest = parse_ros_args(list(cli_args or []))[1]
        if params is not None and any(a in ("-h", "--help") for a in rest):
            print(f"{node_name} parameters (--ros-args -p name:=value):\n{describe(params)}")
            raise SystemExit(0)
        try:
            super().__init__(node_name, namespace=namespace or None, cli_args=ros_part or None)
        except _rclpy.RCLError as e:
            raise ParameterError(f"bad --ros-args: {str(e).splitlines()[0]}") from None
        extra = dict(parameter_overrides or {})
        self._flushed: list[_Publisher] = []
        if params is not None:
            self.params = self._declare_all(params, extra)
        if _state.executor is not None:
            _state.executor.add_node(self)
        self._soon: deque[Callable[[], None]] = deque()
        self._soon_guard = self.create_guard_condition(self._run_soon)

    def _declare_all(self, params: type, extra: dict[str, Any]) -> Any:
        """Declare every field as a typed ROS parameter (its help as the description) and build
        the dataclass from the overrides, coerced by our rules: `-p duration:=5` is the float 5.0,
        `-p num_envs:=abc` a one-line error, not rclpy's exception."""
        hints = typing.get_type_hints(params)
        docs = field_docs(params)
        given = {name: p.value for name, p in self._parameter_overrides.items() if name != "use_sim_time"}
        given.update(extra)
        instance = resolve(params, given)
        for f in dataclasses.fields(params):
            self._declare_typed(f.name, hints[f.name], getattr(instance, f.name), docs.get(f.name, ""))
        return instance

    def _declare_typed(self, name: str, annotation: Any, value: Any, description: str) -> None:
        """Declared with the field's type, not the value's (rclpy infers `[]` as a byte array)."""
        kind = ros_parameter_type(annotation)
        descriptor = ParameterDescriptor(name=name, type=kind, description=description)
        if value is None:  # an Optional left unset: typed once it is given
            descriptor.dynamic_typing = True
            self.declare_parameter(name, None, descriptor, ignore_override=True)
            return
        self.declare_parameter(name, Parameter.Type(kind), descriptor, ignore_override=True)
        self.set_parameters([Parameter(name, Parameter.Type(kind), _ros_value(value))])

    # rclpy's own generated classes (ParameterEvent, parameter services) pass straight through

    def create_publisher(self, msg_type: Any, topic: str, qos_profile: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if not _ours(msg_type):
            return super().create_publisher(msg_type, topic, qos_profile, **kwargs)
        pub = _Publisher(super().create_publisher(ros_class(_type_name(msg_type)), topic, rcl_qos(as_qos(qos_profile))), msg_type)
        self._flushed.append(pub)
        return pub

    def create_subscription(  # type: ignore[override]
        self, msg_type: Any, topic: str, callback: Callable[..., Any], qos_profile: Any, *, raw: bool = False, **kwargs: Any
    ) -> Any:
        if not _ours(msg_type):
            return super().create_subscription(msg_type, topic, callback, qos_profile, raw=raw, **kwargs)
        ours = get_type(_type_name(msg_type))
        with_info = _takes_info(callback)

        def deliver(data: bytes, info: dict) -> None:
            msg = data if raw else deserialize(data, ours)
            if with_info:
                callback(msg, _message_info(info))
            else:
                callback(msg)

        sub = super().create_subscription(ros_class(ours.__msgtype__), topic, deliver, rcl_qos(as_qos(qos_profile)), raw=True)
        return _Subscription(self, sub, sub.topic_name)

    def create_service(self, srv_type: Any, srv_name: str, callback: Callable[[Any, Any], Any], **kwargs: Any) -> Any:  # type: ignore[override]
        if not _ours(srv_type):
            return super().create_service(srv_type, srv_name, callback, **kwargs)
        ours = get_service(srv_type) if isinstance(srv_type, str) else srv_type
        theirs = ros_class(ours.name)

        def handle(request: Any, response: Any) -> Any:
            mine = callback(deserialize(serialize_message(request), ours.Request), ours.Response())
            return deserialize_message(serialize(mine), theirs.Response)

        return super().create_service(theirs, srv_name, handle)

    def create_client(self, srv_type: Any, srv_name: str, **kwargs: Any) -> Any:  # type: ignore[override]
        if not _ours(srv_type):
            return super().create_client(srv_type, srv_name, **kwargs)
        ours = get_service(srv_type) if isinstance(srv_type, str) else srv_type
        theirs = ros_class(ours.name)
        return _Client(super().create_client(theirs, srv_name), ours, theirs)

    # our wrappers hand rclpy the entity they wrap

    def destroy_subscription(self, subscription: Any) -> bool:
        if isinstance(subscription, _Subscription):
            subscription = subscription._sub
        return super().destroy_subscription(subscription)

    def destroy_client(self, client: Any) -> bool:
        if isinstance(client, _Client):
            client = client._client
        return super().destroy_client(client)

    def call_soon(self, callback: Callable[[], None]) -> None:
        self._soon.append(callback)
        self._soon_guard.trigger()

    def _run_soon(self) -> None:
        if self._soon:
            self._soon.popleft()()
        if self._soon:  # one per turn: messages and services get theirs in between
            self._soon_guard.trigger()

    def spin_while(self, busy: Callable[[], bool], timeout_sec: float) -> None:
        stop, _state.stop = _state.stop, False
        deadline = time.monotonic() + timeout_sec
        try:
            while busy() and time.monotonic() < deadline and _state.executor is not None and rclpy.ok():
                _state.executor.spin_once(timeout_sec=0.02)
        finally:
            _state.stop = stop or _state.stop

    def publishers(self) -> list[TopicEndpoint]:
        out = []
        for topic, _types in self.get_topic_names_and_types():
            for info in self.get_publishers_info_by_topic(topic):
                q = info.qos_profile
                qos = QoSProfile(
                    depth=q.depth, reliability=int(q.reliability), durability=int(q.durability), history=int(q.history)
                )
                node = f"{info.node_namespace.rstrip('/')}/{info.node_name}"
                out.append(TopicEndpoint(topic, info.topic_type, _type_hash(info), qos, node))
        return out

    def flush(self) -> None:
        """Wait (bounded) for readers to acknowledge everything this node published."""
        deadline = time.monotonic() + FLUSH_MAX_S
        for pub in self._flushed:
            pub.flush(max(0.0, deadline - time.monotonic()))
        self._flushed.clear()

    def destroy_node(self) -> None:
        self.flush()
        if _state.executor is not None:
            _state.executor.remove_node(self)
        super().destroy_node()


def _message_info(info: dict) -> MessageInfo:
    return {
        "publication_sequence_number": int(info.get("publication_sequence_number", 0)),
        "source_timestamp": int(info.get("source_timestamp", 0)),
        "received_timestamp": int(info.get("received_timestamp", 0)) or time.time_ns(),
        "publisher_gid": b"",
    }


def _ros_part(argv: list[str] | None) -> list[str]:
    """The `--ros-args ... [--]` sections of a command line (rclpy's node cli_args)."""
    out, inside = [], False
    for arg in argv or []:
        if arg == "--ros-args":
            inside = True
        elif arg == "--" and inside:
            inside = False
            continue
        if inside:
            out.append(arg)
    return out


def init(args: list[str] | None = None, *, signals: bool = True, **_: Any) -> None:
    """Start rclpy (idempotent). Our own SIGINT/SIGTERM handlers stop spinning without shutting
    rclpy down, so a node can still take what is in flight (the recorder's last messages)."""
    if not rclpy.ok():
        try:
            rclpy.init(args=["rollout", *_ros_part(args)], signal_handler_options=SignalHandlerOptions.NO)
        except _rclpy.RCLError as e:
            raise ParameterError(f"bad --ros-args: {str(e).splitlines()[0]}") from None
        _state.executor = SingleThreadedExecutor()
        _state.stop, _state.exit_code = False, 0
        if signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, _on_signal)


def _on_signal(signum: int, frame: object) -> None:
    shutdown()


def ok() -> bool:
    return rclpy.ok() and not _state.stop


def shutdown(exit_code: int = 0) -> None:
    """Stop spinning; rclpy itself stays up until `close()` (nodes drain in `destroy_node`)."""
    _state.exit_code = exit_code or _state.exit_code
    _state.stop = True
    if _state.executor is not None:
        _state.executor.wake()  # a waiting spin notices at once


def close() -> None:
    if _state.executor is not None:
        for node in _state.executor.get_nodes():  # not destroyed: still deliver what they published
            if isinstance(node, Node):
                node.flush()
        _state.executor.shutdown(timeout_sec=1.0)
        _state.executor = None
    if rclpy.ok():
        rclpy.shutdown()


def spin(node: Node | None = None) -> None:
    """Run callbacks until `shutdown()`, Ctrl-C or SIGTERM."""
    executor = _state.executor
    if executor is None:
        raise RolloutError("rollout.runtime.init() was not called")
    _state.spinning_thread = threading.get_ident()
    try:
        while not _state.stop and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    finally:
        _state.spinning_thread = None


def spin_once(node: Node | None = None, *, timeout_sec: float | None = None) -> bool:
    if _state.executor is None or _state.stop:
        return False
    _state.executor.spin_once(timeout_sec=timeout_sec)
    return True


def exit_code() -> int:
    return _state.exit_code


def run_node(factory: Callable[..., Node], args: list[str] | None = None) -> None:
    """Like `rollout.runtime.run_node`: a user's mistake ends in one line and exit code 2."""
    run_node_on(sys.modules[__name__], factory, args, stopped=(KeyboardInterrupt, ExternalShutdownException))


def spin_until_future_complete(node: Node | None, future: Future, timeout_sec: float | None = None) -> None:
    deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
    while not future.done() and not _state.stop and _state.executor is not None:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        _state.executor.spin_once(timeout_sec=0.05 if left is None else min(left, 0.05))
