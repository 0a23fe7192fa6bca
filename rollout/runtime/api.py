"""The Node API the nodes are written against, implemented by both backends.

`rollout.runtime.node` (zenoh, rmw_zenoh's wire format) and `rollout.runtime.ros` (rclpy, any
rmw such as Fast DDS) each provide classes that satisfy these protocols, and the modules
themselves satisfy `Backend`; `tests/test_runtime_api.py` checks both against this file.
Messages are our codec's objects on both: rclpy only carries their CDR bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypedDict, runtime_checkable

from rollout.runtime.qos import QoSProfile


class MessageInfo(TypedDict):
    """What a subscription callback with two parameters gets beside the message (rclpy's names)."""

    publication_sequence_number: int
    """The publisher's count of this message, from 1; 0 when the middleware does not say."""
    source_timestamp: int
    """Publish time, ns since the epoch (0 when unknown)."""
    received_timestamp: int
    """Arrival time, ns since the epoch."""
    publisher_gid: bytes
    """Identifies the publisher; b"" where the middleware does not hand it out (rclpy)."""


Callback = Callable[..., Any]  # (msg) or (msg, info: MessageInfo)


@runtime_checkable
class Publisher(Protocol):
    topic_name: str
    msg_type: type

    def publish(self, msg: Any) -> None:
        """A message object, or its CDR bytes; a keep-all reliable publisher waits for slow readers."""

    def get_subscription_count(self) -> int: ...

    def wait_for_subscribers(self, count: int, timeout: float | None = None) -> bool: ...


@runtime_checkable
class Subscription(Protocol):
    topic_name: str

    def pending(self) -> int:
        """Messages that arrived and wait for the callback (non-zero is all that is promised)."""


@runtime_checkable
class Future(Protocol):
    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> Any: ...

    def add_done_callback(self, callback: Callable[[Any], None]) -> None: ...


@runtime_checkable
class Client(Protocol):
    srv_name: str

    def service_is_ready(self) -> bool: ...

    def wait_for_service(self, timeout_sec: float | None = None) -> bool: ...

    def call_async(self, request: Any) -> Future: ...

    def call(self, request: Any, timeout_sec: float = 10.0) -> Any:
        """Call and wait (safe from any thread: no spinning needed); a `ServiceError` on timeout."""


@runtime_checkable
class Timer(Protocol):
    def cancel(self) -> None: ...


@runtime_checkable
class Logger(Protocol):
    def debug(self, msg: str) -> Any: ...

    def info(self, msg: str) -> Any: ...

    def warning(self, msg: str) -> Any: ...

    def error(self, msg: str) -> Any: ...


@runtime_checkable
class TopicEndpointLike(Protocol):
    topic: str
    type_name: str
    type_hash: str
    qos: QoSProfile
    node: str


@runtime_checkable
class Node(Protocol):
    """A node. Its constructor is `(node_name, *, namespace="", cli_args=None, params=None,
    parameter_overrides=None)`: `params` is a frozen dataclass whose fields are the node's
    parameters (type, default, help text); `self.params` is an instance with the overrides from
    `--ros-args -p`, a launch file or `parameter_overrides` applied, each coerced to its field's
    type, and an unknown name or a value of the wrong type is a `ParameterError`."""

    def get_name(self) -> str: ...

    def get_namespace(self) -> str: ...

    def get_logger(self) -> Logger: ...

    def create_publisher(self, msg_type: Any, topic: str, qos_profile: QoSProfile | int) -> Publisher: ...

    def create_subscription(
        self, msg_type: Any, topic: str, callback: Callback, qos_profile: QoSProfile | int, *, raw: bool = False
    ) -> Subscription:
        """callback(msg) or callback(msg, info); `raw=True` hands the CDR bytes instead of a message."""

    def create_timer(self, timer_period_sec: float, callback: Callable[[], None]) -> Timer: ...

    def create_service(self, srv_type: Any, srv_name: str, callback: Callable[[Any, Any], Any]) -> Any: ...

    def create_client(self, srv_type: Any, srv_name: str) -> Client: ...

    def destroy_subscription(self, subscription: Any) -> bool:
        """Undeclare a subscription of this node (False: not one of its own)."""

    def destroy_client(self, client: Any) -> bool: ...

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the spinning thread after what already waits (messages, services)."""

    def spin_while(self, busy: Callable[[], bool], timeout_sec: float) -> None:
        """Run callbacks while `busy()` holds, even after shutdown was asked for (a node's last drain)."""

    def publishers(self) -> list[Any]:
        """Every publisher in the graph as `TopicEndpoint`s: topic, type, type hash, QoS, node."""

    def count_publishers(self, topic_name: str) -> int: ...

    def count_subscribers(self, topic_name: str) -> int: ...

    def get_topic_names_and_types(self) -> list[tuple[str, list[str]]]: ...

    def destroy_node(self) -> Any: ...


class Backend(Protocol):
    """The module functions (rclpy's names): `rollout.runtime` and `rollout.runtime.ros`."""

    Node: type

    def init(self, args: list[str] | None = None) -> Any: ...

    def ok(self) -> bool:
        """False once shutdown was asked for (outside a node's final `spin_while`)."""

    def spin(self, node: Any = None) -> None:
        """Run callbacks until `shutdown()`, Ctrl-C or SIGTERM."""

    def spin_once(self, node: Any = None, *, timeout_sec: float | None = None) -> bool: ...

    def shutdown(self, exit_code: int = 0) -> None:
        """Stop spinning (from any callback or thread); `run_node` then exits with `exit_code`."""

    def close(self) -> None: ...

    def exit_code(self) -> int:
        """The code the last `shutdown(exit_code)` asked for (0 by default)."""

    def run_node(self, factory: Callable[..., Any], args: list[str] | None = None) -> None:
        """Build, spin, destroy, exit; a `RolloutError` ends in one line and exit code 2."""
