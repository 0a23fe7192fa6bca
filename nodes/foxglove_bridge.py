"""Foxglove bridge node: the live graph in Foxglove (Open connection → Foxglove WebSocket), as ROS 2's
foxglove_bridge does, served by the Foxglove SDK on ws://127.0.0.1:8765.

Topics: every topic with a publisher in the graph becomes a channel as it appears (found from the
graph's liveliness tokens, like `rollout topic list`) and goes when its last publisher does; its
schema is the codec's `ros2msg` text, its messages are the `cdr` bytes from the wire, never
re-encoded. A topic is subscribed (best effort, keep last `depth`) only while a client wants it,
so a LOSSLESS publisher never waits for the bridge; latched topics (transient-local publishers:
/rollout/robot, /robot_description, /rollout/playback/timeline) are held from the start and
their last messages go to every client that subscribes later.
Services: every service in the graph whose type is known (the replay's /replay/pause, resume,
seek, set_rate, seek_step, seek_episode, ... and the sim's /sim/set_policy_enabled), callable
from Foxglove's Service Call panel (requests and responses in `cdr`).
A topic is passed on at `max_rate` and `max_mb_s` at most; while its budget is spent for more than
50 ms the bridge unsubscribes from it, so a large topic costs the sim only the copies a client is
shown. A slow client loses the oldest messages of its queue (`client_backlog`), never anyone else's.

    rollout run foxglove_bridge --ros-args -p port:=8765
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import foxglove
from foxglove.websocket import Capability

from rollout.codec import deserialize, get_service, schema_text, serialize
from rollout.errors import ParameterError, PortInUseError, RolloutError, ServiceError, TransportError
from rollout.runtime import DurabilityPolicy, Node, QoSProfile, ReliabilityPolicy, backend, run_node


@dataclass(frozen=True)
class FoxgloveBridgeParams:
    host: str = "127.0.0.1"
    """Address to serve on (0.0.0.0: every interface)."""
    port: int = 8765
    """TCP port of the WebSocket server (0: any free port)."""
    depth: int = 2
    """Messages of a topic held while the bridge is behind (keep-last: older ones are dropped)."""
    max_rate: float = 100.0
    """Messages per second and topic passed on to clients at most (0: all); a recording running
    faster than real time is shown at this rate, and the bag still has every step."""
    max_mb_s: float = 25.0
    """Megabytes per second and topic passed on at most (0: no limit): 1,024 envs' 2.2 MB states
    are shown about 11 times a second, and the sim sends no more than that to the bridge."""
    client_backlog: int = 32
    """Messages queued per client; a client that reads slower than the graph publishes loses the oldest."""
    discovery_period: float = 0.5
    """Seconds between looks at the graph for topics and services that appeared or went."""
    service_timeout: float = 5.0
    """Seconds a service call from Foxglove waits for the graph's answer."""


# ----------------------------------------------------------------------------- pure functions


def check_params(p: FoxgloveBridgeParams) -> None:
    """Raise a one-line `ParameterError` for a parameter that cannot work."""
    if not 0 <= p.port < 65536:
        raise ParameterError(f"port must be 0 (any free port) or 1-65535, got {p.port}")
    if p.depth < 1 or p.client_backlog < 1:
        raise ParameterError(f"depth and client_backlog must be at least 1, got {p.depth} and {p.client_backlog}")
    if p.max_rate < 0 or p.max_mb_s < 0:
        raise ParameterError(f"max_rate and max_mb_s must be 0 (no limit) or positive, got {p.max_rate} and {p.max_mb_s}")
    if not p.discovery_period > 0 or not p.service_timeout > 0:
        raise ParameterError("discovery_period and service_timeout must be positive")


def check_backend() -> None:
    """The bridge reads the graph through the zenoh runtime; under ROS 2, ROS has its own bridge."""
    if backend() != "zenoh":
        raise RolloutError("foxglove_bridge runs on the zenoh backend; with ROS 2 sourced, run ROS's foxglove_bridge")


def ros2msg_schema(type_name: str) -> foxglove.Schema:
    """The channel schema Foxglove parses: `pkg/msg/Name` and its rosbag2-style `ros2msg` text."""
    return foxglove.Schema(name=type_name, encoding="ros2msg", data=schema_text(type_name).encode())


def service_schema(srv_type: str) -> foxglove.ServiceSchema:
    """Request and response schemas of a service type (`pkg/srv/Name`), both carried as `cdr`."""

    def part(kind: str) -> foxglove.MessageSchema:
        return foxglove.MessageSchema(encoding="cdr", schema=ros2msg_schema(f"{srv_type}_{kind}"))

    return foxglove.ServiceSchema(srv_type, request=part("Request"), response=part("Response"))


def server_error(e: Exception, port: int) -> RolloutError:
    """The SDK's failure to start, as one line for the user."""
    if "in use" in str(e):
        return PortInUseError(port, "Foxglove server")
    return TransportError(f"cannot start the Foxglove server: {e}")


# A topic whose budget is spent for longer than this is unsubscribed until it is not: the publisher
# then sends it nowhere (declaring a subscription again takes a round trip, a few milliseconds)
REST_UNSUBSCRIBED_S = 0.05


@dataclass
class Forwarded:
    """One topic offered to Foxglove: its channel, who wants it, and (latched) its last messages."""

    type_name: str
    latched: bool
    channel: foxglove.Channel
    latest: deque[bytes]
    min_interval: float = 0.0  # seconds between messages passed on (latched topics: 0)
    bytes_per_s: float = 0.0  # bytes per second passed on at most (0 or latched: no limit)
    clients: set[int] = field(default_factory=set)
    subscription: Any = None
    _next: float = 0.0  # monotonic time from which the next message may be passed on

    def forward(self, data: bytes) -> None:
        if self.latched:
            self.latest.append(data)
        now = time.monotonic()
        if now < self._next:
            return  # over max_rate or max_mb_s: no client could watch it, and each copy costs the graph CPU
        spacing = max(self.min_interval, len(data) / self.bytes_per_s if self.bytes_per_s else 0.0)
        self._next = now + spacing
        self.channel.log(data, log_time=time.time_ns())

    def resting(self) -> bool:
        """Its budget is spent for long enough that the sim should stop sending it here meanwhile."""
        return not self.latched and self._next - time.monotonic() > REST_UNSUBSCRIBED_S

    def rested(self) -> bool:
        """A client wants it, it was unsubscribed to rest, and its budget allows a message again."""
        return bool(self.clients) and self.subscription is None and time.monotonic() >= self._next

    def resend_latched(self) -> None:
        """A latched topic's last messages again, for a client that just subscribed."""
        for data in self.latest:
            self.channel.log(data, log_time=time.time_ns())


# foxglove-sdk 0.30 sends a client the advertisement of a new channel before it records that the
# client knows the channel, so a client that subscribes at once can be refused with this line
REFUSED = re.compile(r"attempted to subscribe to unknown channel: (\d+)")


class _SdkLog(logging.Handler):
    """The SDK's own lines (clients connecting, protocol errors) as this node's log lines."""

    def __init__(self, node: FoxgloveBridge) -> None:
        super().__init__(logging.INFO)
        self._node = node

    def emit(self, record: logging.LogRecord) -> None:
        log = self._node.get_logger()
        say = log.error if record.levelno >= logging.ERROR else log.warning if record.levelno >= logging.WARNING else log.info
        text = record.getMessage()
        say(f"websocket: {text}")
        refused = REFUSED.search(text)
        if refused:
            channel_id = int(refused.group(1))
            self._node.call_soon(lambda: self._node.refused(channel_id))


# ----------------------------------------------------------------------------- node


class FoxgloveBridge(Node):
    def __init__(self, args: list[str] | None = None) -> None:
        check_backend()
        super().__init__("foxglove_bridge", params=FoxgloveBridgeParams, cli_args=args)
        p = self.params
        check_params(p)
        self.topics: dict[str, Forwarded] = {}
        self._topic_of: dict[int, str] = {}  # channel id -> topic
        self.services: dict[str, tuple[Any, Any]] = {}  # name -> (ServiceType, client)
        self._skipped: set[str] = set()  # topics and services of unknown types, reported once
        sdk_log = logging.getLogger("foxglove")
        sdk_log.handlers[:] = [_SdkLog(self)]
        sdk_log.setLevel(logging.INFO)
        sdk_log.propagate = False
        self._fox = foxglove.Context()
        try:
            self.server = foxglove.start_server(
                name="rollout",
                host=p.host,
                port=p.port,
                capabilities=[Capability.Services],
                supported_encodings=["cdr"],
                server_listener=_Listener(self),
                context=self._fox,
                message_backlog_size=p.client_backlog,
            )
        except RuntimeError as e:
            raise server_error(e, p.port) from None
        self.get_logger().info(
            f"Foxglove WebSocket server on ws://{p.host}:{self.server.port} (Foxglove: Open connection → Foxglove WebSocket)"
        )
        self.create_timer(p.discovery_period, self.discover)
        self.create_timer(REST_UNSUBSCRIBED_S / 2, self.resubscribe_rested)
        self.call_soon(self.discover)

    # -- graph discovery (on the spinning thread)

    def discover(self) -> None:
        publishers: dict[str, QoSProfile] = {}
        types: dict[str, str] = {}
        for pub in self.publishers():
            types.setdefault(pub.topic, pub.type_name)
            if pub.topic not in publishers or pub.qos.latched:
                publishers[pub.topic] = pub.qos
        for topic in set(self.topics) - set(publishers):
            self._unadvertise(topic)
        for topic, qos in publishers.items():
            if topic not in self.topics:
                self._advertise(topic, types[topic], qos)
        servers = {e.name: e.type_name for e in self.context.graph.entities("SS")}
        for name in set(self.services) - set(servers):
            self.server.remove_services([name])
            self.destroy_client(self.services.pop(name)[1])
        for name, srv_type in servers.items():
            if name not in self.services:
                self._offer_service(name, srv_type)

    def _advertise(self, topic: str, type_name: str, qos: QoSProfile) -> None:
        try:
            schema = ros2msg_schema(type_name)
        except RolloutError as e:
            self._skip(topic, f"not advertising {topic}: {e}")
            return
        channel = self._channel(topic, schema)
        p = self.params
        interval = 1.0 / p.max_rate if p.max_rate and not qos.latched else 0.0
        rate = p.max_mb_s * 1e6 if not qos.latched else 0.0
        fwd = Forwarded(type_name, qos.latched, channel, deque(maxlen=max(qos.depth, 1)), interval, rate)
        self.topics[topic] = fwd
        if fwd.latched:  # held from the start, so a late client gets what was published before it came
            self._subscribe(topic, fwd)
        self.get_logger().info(f"advertising {topic} ({type_name}{', latched' if fwd.latched else ''})")

    def _channel(self, topic: str, schema: foxglove.Schema) -> foxglove.Channel:
        channel = foxglove.Channel(topic, schema=schema, message_encoding="cdr", context=self._fox)
        self._topic_of[channel.id()] = topic
        return channel

    def _unadvertise(self, topic: str) -> None:
        fwd = self.topics.pop(topic)
        if fwd.subscription is not None:
            self._unsubscribe(fwd)
        self._topic_of.pop(fwd.channel.id(), None)
        fwd.channel.close()
        self.get_logger().info(f"{topic} has no publisher any more: unadvertised")

    def refused(self, channel_id: int) -> None:
        """The SDK refused a subscription to a channel we have (its advertise/subscribe race):
        advertise the topic again under a new channel id, so that clients subscribe again."""
        topic = self._topic_of.pop(channel_id, None)
        if topic is None:
            return  # a channel nobody advertised: the SDK's line says so
        fwd = self.topics[topic]
        schema = fwd.channel.schema()
        fwd.channel.close()  # clients see it go and come back, and subscribe to the new one
        fwd.channel = self._channel(topic, schema)  # type: ignore[arg-type]
        fwd.clients.clear()
        if fwd.subscription is not None and not fwd.latched:
            self._unsubscribe(fwd)
        self.get_logger().warning(f"a subscription to {topic} came before its advertisement had settled: advertised it again")

    def _subscribe(self, topic: str, fwd: Forwarded) -> None:
        # best effort + keep last: what the bridge cannot take in time is dropped here, so the
        # graph's reliable, blocking publishers never wait for it; latched needs transient local
        qos = QoSProfile(
            depth=fwd.latest.maxlen or 1 if fwd.latched else self.params.depth,
            reliability=ReliabilityPolicy.RELIABLE if fwd.latched else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if fwd.latched else DurabilityPolicy.VOLATILE,
        )
        fwd.subscription = self.create_subscription(fwd.type_name, topic, lambda data: self.pass_on(topic, data), qos, raw=True)

    def pass_on(self, topic: str, data: bytes) -> None:
        fwd = self.topics.get(topic)
        if fwd is None or fwd.subscription is None:
            return  # already in the queue when its subscription went
        fwd.forward(data)
        if fwd.resting():
            self._unsubscribe(fwd)

    def resubscribe_rested(self) -> None:
        for topic, fwd in self.topics.items():
            if fwd.rested():
                self._subscribe(topic, fwd)

    def _unsubscribe(self, fwd: Forwarded) -> None:
        self.destroy_subscription(fwd.subscription)
        fwd.subscription = None

    def _offer_service(self, name: str, srv_type: str) -> None:
        try:
            service = get_service(srv_type)
            schema = service_schema(srv_type)
        except RolloutError as e:
            self._skip(name, f"not offering service {name}: {e}")
            return
        self.services[name] = (service, self.create_client(service, name))
        self.server.add_services([foxglove.Service(name, schema=schema, handler=self.call_service)])
        self.get_logger().info(f"offering service {name} ({srv_type})")

    def _skip(self, name: str, line: str) -> None:
        if name not in self._skipped:
            self._skipped.add(name)
            self.get_logger().warning(line)

    # -- clients (the SDK calls these on its threads; graph changes are posted to the spinning thread)

    def subscribed(self, client: int, channel_id: int) -> None:
        topic = self._topic_of.get(channel_id)
        if topic is None:
            return  # a channel closed since
        fwd = self.topics[topic]
        fwd.clients.add(client)
        if fwd.subscription is None:
            self._subscribe(topic, fwd)
        if fwd.latched:
            fwd.resend_latched()
        self.get_logger().info(f"client {client} subscribed to {topic}")

    def unsubscribed(self, client: int, channel_id: int) -> None:
        topic = self._topic_of.get(channel_id)
        if topic is None:
            return
        fwd = self.topics[topic]
        fwd.clients.discard(client)
        if not fwd.clients and not fwd.latched and fwd.subscription is not None:
            self._unsubscribe(fwd)
        self.get_logger().info(f"client {client} unsubscribed from {topic}")

    def call_service(self, request: foxglove.ServiceRequest) -> bytes:
        """A Service Call panel's request, passed on to the graph's service; the response's CDR bytes."""
        name = request.service_name
        try:
            if request.encoding != "cdr":
                raise ServiceError(f"requests must be cdr-encoded, not {request.encoding!r}")
            service, client = self.services[name]
            response = client.call(deserialize(request.payload, service.Request), timeout_sec=self.params.service_timeout)
        except (RolloutError, KeyError) as e:
            self.get_logger().warning(f"client {request.client_id}: service {name} failed: {e}")
            raise
        return serialize(response)

    def destroy_node(self) -> None:
        self.server.stop()
        super().destroy_node()


class _Listener:
    """The SDK's server listener: subscriptions come in on its threads and go to the node's."""

    def __init__(self, node: FoxgloveBridge) -> None:
        self._node = node

    def on_subscribe(self, client: Any, channel: Any) -> None:
        cid, channel_id = client.id, channel.id
        self._node.call_soon(lambda: self._node.subscribed(cid, channel_id))

    def on_unsubscribe(self, client: Any, channel: Any) -> None:
        cid, channel_id = client.id, channel.id
        self._node.call_soon(lambda: self._node.unsubscribed(cid, channel_id))


def main(args: list[str] | None = None) -> None:
    run_node(FoxgloveBridge, args)


if __name__ == "__main__":
    main()
