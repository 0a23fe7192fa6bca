"""Node, publishers, subscriptions, timers, services and clients with rclpy's names, over zenoh.

Messages travel as CDR bytes (with the 4-byte encapsulation header) on rmw_zenoh's keys, each
with rmw_zenoh's 33-byte attachment (sequence number, source timestamp, publisher GID), and every
entity announces itself with a liveliness token, so `ros2 topic list` under rmw_zenoh sees us.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
import logging
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import zenoh
import zenoh.ext

from rollout.codec import deserialize, get_service, get_type, serialize, type_hash
from rollout.errors import ParameterError, ServiceError
from rollout.runtime import context as ctx
from rollout.runtime.executor import Mailbox, Timer
from rollout.runtime.names import data_key, gid_of, resolve_name, token_key, validate_name
from rollout.runtime.params import describe, parse_ros_args, resolve
from rollout.runtime.qos import QoSProfile, as_qos

KEEP_ALL_CHANNEL = 8  # samples a keep-all subscription's zenoh channel holds before the network waits
_ATTACHMENT = struct.Struct("<qqB16s")  # seq, source timestamp ns, GID length (16), GID
MessageInfo = dict[str, Any]


def _attachment(seq: int, gid: bytes) -> bytes:
    return _ATTACHMENT.pack(seq, time.time_ns(), 16, gid)


def _message_info(attachment: zenoh.ZBytes | None) -> MessageInfo:
    info: MessageInfo = {"received_timestamp": time.time_ns()}
    raw = attachment.to_bytes() if attachment is not None else b""
    if len(raw) == _ATTACHMENT.size:
        seq, stamp, _, gid = _ATTACHMENT.unpack(raw)
        info.update(publication_sequence_number=seq, source_timestamp=stamp, publisher_gid=gid)
    else:
        info.update(publication_sequence_number=0, source_timestamp=0, publisher_gid=b"")
    return info


def _takes_info(callback: Callable[..., Any]) -> bool:
    """rclpy passes (msg, info) to a callback with two parameters."""
    try:
        params = [
            p
            for p in inspect.signature(callback).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


def _type_class(msg_type: type | str) -> type:
    return get_type(msg_type) if isinstance(msg_type, str) else msg_type


class Publisher:
    def __init__(self, node: Node, msg_type: type | str, topic: str, qos: QoSProfile) -> None:
        self.msg_type = _type_class(msg_type)
        self.topic_name = topic
        self.qos = qos
        self._node = node
        self._seq = 0
        c = node.context
        name = self.msg_type.__msgtype__
        type_hash_ = type_hash(name)
        key = data_key(c.domain, topic, name, type_hash_)
        eid = c.next_id()
        token = node._token(eid, "MP", topic, name, type_hash_, qos)
        self._gid = gid_of(token)
        reliability = zenoh.Reliability.RELIABLE if qos.reliable else zenoh.Reliability.BEST_EFFORT
        # rmw_zenoh: only reliable keep-all publishers block; everything else drops when congested
        congestion = zenoh.CongestionControl.BLOCK if qos.reliable and qos.keep_all else zenoh.CongestionControl.DROP
        if qos.latched:
            self._pub = zenoh.ext.declare_advanced_publisher(
                c.session,
                key,
                congestion_control=congestion,
                reliability=reliability,
                cache=zenoh.ext.CacheConfig(max_samples=max(qos.depth, 1)),
                publisher_detection=True,
            )
        else:
            self._pub = c.session.declare_publisher(key, congestion_control=congestion, reliability=reliability)
        c.sends_keep_all |= congestion == zenoh.CongestionControl.BLOCK
        self._token = c.session.liveliness().declare_token(token)
        self._lock = threading.Lock()

    def publish(self, msg: Any) -> None:
        """Publish a message object, or its CDR bytes (bytes, bytearray or memoryview)."""
        if isinstance(msg, (bytes, bytearray)):
            data = msg
        elif isinstance(msg, memoryview):
            data = msg.tobytes()  # zenoh takes bytes, not buffers
        else:
            data = serialize(msg)
        with self._lock:
            self._seq += 1
            self._pub.put(data, attachment=_attachment(self._seq, self._gid))

    def get_subscription_count(self) -> int:
        return self._node.context.graph.count("MS", self.topic_name)

    def wait_for_subscribers(self, count: int, timeout: float | None = None) -> bool:
        return self._node.context.graph.wait_for(lambda: self.get_subscription_count() >= count, timeout)

    def destroy(self) -> None:
        self._token.undeclare()
        if self.qos.keep_all and not self.qos.latched:
            # undeclared now, it would drop what is still queued for a slow subscriber: it lives
            # until the session's delivery barrier at close (a latched one must go now: its cache
            # would keep answering late joiners)
            self._node.context.retired.append(self._pub)
        else:
            self._pub.undeclare()


class Subscription:
    def __init__(
        self,
        node: Node,
        msg_type: type | str,
        topic: str,
        callback: Callable[..., Any],
        qos: QoSProfile,
        raw: bool,
    ) -> None:
        self.msg_type = _type_class(msg_type)
        self.topic_name = topic
        self.qos = qos
        self.raw = raw
        self._callback = callback
        self._with_info = _takes_info(callback)
        c = node.context
        name = self.msg_type.__msgtype__
        type_hash_ = type_hash(name)
        key = data_key(c.domain, topic, name, type_hash_)
        self._mailbox = Mailbox(c.executor, self._deliver, depth=qos.depth, keep_all=qos.keep_all)
        # keep-all: a bounded channel that a thread of ours empties into the mailbox. When the mailbox
        # is full the channel fills, zenoh's network thread waits, and the BLOCK publisher with it.
        # (A plain callback runs behind zenoh-python's unbounded channel, which would swallow that
        # back-pressure and grow without limit; `indirect=False` keeps it but costs ~4x the CPU.)
        on_sample = zenoh.handlers.FifoChannel(KEEP_ALL_CHANNEL) if qos.keep_all else self._on_sample
        if qos.latched:
            self._sub = zenoh.ext.declare_advanced_subscriber(
                c.session,
                key,
                on_sample,
                history=zenoh.ext.HistoryConfig(detect_late_publishers=True, max_samples=max(qos.depth, 1)),
                subscriber_detection=True,
            )
        else:
            self._sub = c.session.declare_subscriber(key, on_sample)
        self._pump_thread: threading.Thread | None = None
        if qos.keep_all:
            self._pump_thread = threading.Thread(target=self._pump, name=f"sub {topic}", daemon=True)
            self._pump_thread.start()
            c.pumps.append(self._pump_thread)
        self._token = c.session.liveliness().declare_token(node._token(c.next_id(), "MS", topic, name, type_hash_, qos))

    def _pump(self) -> None:
        """Move samples from the zenoh channel to the mailbox, all that are waiting in one hand-off
        (one lock and one wake-up of the spinning thread per batch, not per message)."""
        channel = self._sub.handler
        for sample in channel:  # ends when the subscriber is undeclared
            batch = [sample]
            try:
                while len(batch) < KEEP_ALL_CHANNEL and (more := channel.try_recv()) is not None:
                    batch.append(more)
            except zenoh.ZError:  # closed: hand over what came, then the loop ends
                pass
            items = [(s.payload.to_bytes(), s.attachment) for s in batch]
            self._mailbox.put_many(items, [len(data) for data, _ in items])

    def _on_sample(self, sample: zenoh.Sample) -> None:
        data = sample.payload.to_bytes()
        self._mailbox.put((data, sample.attachment), len(data))

    def _deliver(self, item: object) -> None:
        data, attachment = item  # type: ignore[misc]
        msg = data if self.raw else deserialize(data, self.msg_type)
        if self._with_info:
            self._callback(msg, _message_info(attachment))
        else:
            self._callback(msg)

    @property
    def dropped(self) -> int:
        """Messages dropped because the callback fell behind (keep-last queues only)."""
        return self._mailbox.dropped

    def pending(self) -> int:
        return self._mailbox.pending()

    def destroy(self) -> None:
        self._token.undeclare()
        self._sub.undeclare()
        self._mailbox.close()
        if self._pump_thread is not None:
            self._pump_thread.join(1.0)  # ends with the channel; never leave it to die at interpreter exit


class Service:
    def __init__(self, node: Node, srv_type: type | str, name: str, callback: Callable[[Any, Any], Any]) -> None:
        self.srv_type = get_service(srv_type) if isinstance(srv_type, str) else srv_type
        self.srv_name = name
        self._callback = callback
        self._node = node
        c = node.context
        type_name, hash_ = self.srv_type.name, self.srv_type.hash
        self._key = data_key(c.domain, name, type_name, hash_)
        self._queryable = c.session.declare_queryable(self._key, self._on_query, complete=True)
        self._token = c.session.liveliness().declare_token(
            node._token(c.next_id(), "SS", name, type_name, hash_, QoSProfile(depth=10))
        )

    def _on_query(self, query: zenoh.Query) -> None:
        payload = query.payload.to_bytes() if query.payload is not None else b""
        attachment = query.attachment.to_bytes() if query.attachment is not None else None
        self._node.context.executor.post(lambda: self._handle(query, payload, attachment))

    def _handle(self, query: zenoh.Query, payload: bytes, attachment: bytes | None) -> None:
        try:
            request = deserialize(payload, self.srv_type.Request)
            response = self._callback(request, self.srv_type.Response())
            query.reply(self._key, serialize(response), attachment=attachment)
        except Exception as e:  # the caller gets an error reply, this node keeps running
            self._node.get_logger().error(f"service {self.srv_name} failed: {e}")
            query.reply_err(str(e).encode())
        finally:
            query.drop()

    def destroy(self) -> None:
        self._token.undeclare()
        self._queryable.undeclare()


class Future:
    """The result of `Client.call_async` (rclpy's Future): `done()`, `result()`, callbacks."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Future], None]] = []
        self._lock = threading.Lock()

    def set_result(self, result: Any) -> None:
        self._finish(result, None)

    def set_exception(self, error: BaseException) -> None:
        self._finish(None, error)

    def _finish(self, result: Any, error: BaseException | None) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._result, self._error = result, error
            self._event.set()
            callbacks = list(self._callbacks)
        for cb in callbacks:
            cb(self)

    def done(self) -> bool:
        return self._event.is_set()

    def result(self, timeout: float | None = None) -> Any:
        if not self._event.wait(timeout):
            raise ServiceError("no response within the timeout")
        if self._error is not None:
            raise self._error
        return self._result

    def exception(self) -> BaseException | None:
        return self._error

    def add_done_callback(self, callback: Callable[[Future], None]) -> None:
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback(self)


class Client:
    def __init__(self, node: Node, srv_type: type | str, name: str) -> None:
        self.srv_type = get_service(srv_type) if isinstance(srv_type, str) else srv_type
        self.srv_name = name
        self._node = node
        c = node.context
        type_name, hash_ = self.srv_type.name, self.srv_type.hash
        self._key = data_key(c.domain, name, type_name, hash_)
        token = node._token(c.next_id(), "SC", name, type_name, hash_, QoSProfile(depth=10))
        self._gid = gid_of(token)
        self._token = c.session.liveliness().declare_token(token)
        self._seq = 0
        self._lock = threading.Lock()

    def service_is_ready(self) -> bool:
        return self._node.context.graph.count("SS", self.srv_name) > 0

    def wait_for_service(self, timeout_sec: float | None = None) -> bool:
        return self._node.context.graph.wait_for(self.service_is_ready, timeout_sec)

    def call_async(self, request: Any, *, timeout_sec: float = 10.0) -> Future:
        future = Future()
        with self._lock:
            self._seq += 1
            attachment = _attachment(self._seq, self._gid)

        def on_reply(reply: zenoh.Reply) -> None:
            if reply.ok is not None:
                try:
                    future.set_result(deserialize(reply.ok.payload.to_bytes(), self.srv_type.Response))
                except Exception as e:
                    future.set_exception(e)
            else:
                future.set_exception(ServiceError(f"{self.srv_name}: {reply.err.payload.to_string()}"))

        self._node.context.session.get(
            self._key,
            on_reply,
            payload=serialize(request),
            attachment=attachment,
            target=zenoh.QueryTarget.ALL_COMPLETE,
            consolidation=zenoh.ConsolidationMode.NONE,
            timeout=timeout_sec,
        )
        return future

    def call(self, request: Any, timeout_sec: float = 10.0) -> Any:
        """Call and wait for the response (safe from any thread: it does not need spinning)."""
        if not self.service_is_ready() and not self.wait_for_service(min(timeout_sec, 2.0)):
            raise ServiceError(f"service {self.srv_name} is not available")
        try:
            return self.call_async(request, timeout_sec=timeout_sec).result(timeout_sec)
        except ServiceError as e:
            raise ServiceError(f"service {self.srv_name}: {e}") from None

    def destroy(self) -> None:
        self._token.undeclare()


class _Logger:
    """rclpy's logger methods over `logging`, lines like `[INFO] [1718000000.123] [sim]: text`."""

    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(f"rollout.node.{name}")
        self._name = name
        if not self._log.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(_Formatter(name))
            self._log.addHandler(handler)
            self._log.propagate = False
            self._log.setLevel(logging.INFO)

    def set_level(self, level: str) -> None:
        self._log.setLevel(level.upper())

    def debug(self, msg: str) -> None:
        self._log.debug(msg)

    def info(self, msg: str) -> None:
        self._log.info(msg)

    def warning(self, msg: str) -> None:
        self._log.warning(msg)

    warn = warning

    def error(self, msg: str) -> None:
        self._log.error(msg)

    def fatal(self, msg: str) -> None:
        self._log.critical(msg)


class _Formatter(logging.Formatter):
    LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    def format(self, record: logging.LogRecord) -> str:
        level = self.LEVELS.get(record.levelname, record.levelname)
        return f"[{level}] [{record.created:.3f}] [{self._name}]: {record.getMessage()}"


class Node:
    """A node in the graph (rclpy.node.Node's API over the zenoh runtime).

    params: a frozen dataclass whose fields are the node's parameters; `self.params` is an
    instance with `--ros-args -p name:=value` overrides applied (unknown names are an error).
    """

    def __init__(
        self,
        node_name: str,
        *,
        namespace: str = "",
        cli_args: list[str] | None = None,
        params: type | None = None,
        parameter_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.context = ctx.get_context()
        argv = self.context.args if cli_args is None else list(cli_args)
        ros, rest = parse_ros_args(argv)
        if params is not None and any(a in ("-h", "--help") for a in rest):
            print(f"{node_name} parameters (--ros-args -p name:=value):\n{describe(params)}")
            raise SystemExit(0)
        self._name = ros.node_name or node_name
        self._namespace = "/" + (ros.namespace or namespace).strip("/")
        self._remaps = ros.remaps
        self._logger = _Logger(self._name)
        if ros.log_level:
            self._logger.set_level(ros.log_level)
        overrides: dict[str, Any] = ros.file_params(f"{self._namespace.rstrip('/')}/{self._name}")
        overrides.update(ros.params)
        overrides.update({k: str(v) for k, v in (parameter_overrides or {}).items()})
        self._param_values: dict[str, Any] = {}
        self._overrides: dict[str, Any] = {}
        if params is not None:
            self.params = resolve(params, overrides)
            self._param_values = {f.name: getattr(self.params, f.name) for f in dataclasses.fields(params)}
        else:
            self._overrides = overrides  # consumed by declare_parameter
        self._nid = self.context.next_id()
        self._entities: list[Any] = []
        self._node_token = self.context.session.liveliness().declare_token(
            token_key(self.context.domain, self.context.zid, self._nid, self._nid, "NN", self._namespace, self._name)
        )

    # -- identity

    def get_name(self) -> str:
        return self._name

    def get_namespace(self) -> str:
        return self._namespace

    def get_fully_qualified_name(self) -> str:
        return f"{self._namespace.rstrip('/')}/{self._name}"

    def get_logger(self) -> _Logger:
        return self._logger

    def _token(self, eid: int, kind: str, name: str, type_name: str, type_hash_: str, qos: QoSProfile) -> str:
        c = self.context
        return token_key(
            c.domain,
            c.zid,
            self._nid,
            eid,
            kind,
            self._namespace,
            self._name,
            name=name,
            type_name=type_name,
            type_hash=type_hash_,
            qos=qos.rmw_zenoh_string(),
        )

    def _resolve(self, name: str, what: str) -> str:
        return validate_name(resolve_name(name, self._namespace, self._name, self._remaps), what)

    # -- parameters (declare_parameter for code that does not use a dataclass)

    def declare_parameter(self, name: str, value: Any = None) -> Any:
        from rollout.runtime.params import parse_value

        if name in self._overrides:
            given = self._overrides.pop(name)
            value = parse_value(given) if isinstance(given, str) else given
        self._param_values[name] = value
        return _Parameter(name, value)

    def get_parameter(self, name: str) -> Any:
        if name not in self._param_values:
            raise ParameterError(f"parameter {name!r} is not declared")
        return _Parameter(name, self._param_values[name])

    # -- entities

    def create_publisher(self, msg_type: type | str, topic: str, qos_profile: QoSProfile | int) -> Publisher:
        pub = Publisher(self, msg_type, self._resolve(topic, "topic"), as_qos(qos_profile))
        self._entities.append(pub)
        return pub

    def create_subscription(
        self,
        msg_type: type | str,
        topic: str,
        callback: Callable[..., Any],
        qos_profile: QoSProfile | int,
        *,
        raw: bool = False,
    ) -> Subscription:
        sub = Subscription(self, msg_type, self._resolve(topic, "topic"), callback, as_qos(qos_profile), raw)
        self._entities.append(sub)
        return sub

    def create_timer(self, timer_period_sec: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(self.context.executor, timer_period_sec, callback)
        self._entities.append(timer)
        return timer

    def create_service(self, srv_type: type | str, srv_name: str, callback: Callable[[Any, Any], Any]) -> Service:
        srv = Service(self, srv_type, self._resolve(srv_name, "service"), callback)
        self._entities.append(srv)
        return srv

    def create_client(self, srv_type: type | str, srv_name: str) -> Client:
        cli = Client(self, srv_type, self._resolve(srv_name, "service"))
        self._entities.append(cli)
        return cli

    def destroy_subscription(self, subscription: Subscription) -> bool:
        """Undeclare one subscription (rclpy's name): its publishers stop sending here."""
        return self._destroy(subscription)

    def destroy_client(self, client: Client) -> bool:
        return self._destroy(client)

    def _destroy(self, entity: Any) -> bool:
        if entity not in self._entities:
            return False
        self._entities.remove(entity)
        entity.destroy()
        return True

    # -- graph

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the spinning thread after what is already waiting (services, messages)."""
        self.context.executor.post(callback)

    def spin_while(self, busy: Callable[[], bool], timeout_sec: float) -> None:
        """Run callbacks while `busy()` holds, even after shutdown was requested: the last drain
        of a node (e.g. the recorder taking what is still in flight) before it is destroyed."""
        executor = self.context.executor
        stopped, executor.stopped = executor.stopped, False
        deadline = time.monotonic() + timeout_sec
        try:
            while busy() and time.monotonic() < deadline:
                executor.spin_once(0.02)
        finally:
            executor.stopped = stopped

    def publishers(self) -> list[TopicEndpoint]:
        """Every publisher in the graph: topic, type, type hash, offered QoS and node."""
        return [
            TopicEndpoint(e.name, e.type_name, e.type_hash, QoSProfile.from_rmw_zenoh_string(e.qos), e.node_fqn)
            for e in self.context.graph.entities("MP")
        ]

    def get_topic_names_and_types(self) -> list[tuple[str, list[str]]]:
        topics: dict[str, set[str]] = {}
        for e in self.context.graph.entities():
            if e.kind in ("MP", "MS"):
                topics.setdefault(e.name, set()).add(e.type_name)
        return sorted((name, sorted(types)) for name, types in topics.items())

    def get_node_names(self) -> list[str]:
        return sorted({e.node for e in self.context.graph.entities("NN")})

    def count_publishers(self, topic_name: str) -> int:
        return self.context.graph.count("MP", self._resolve(topic_name, "topic"))

    def count_subscribers(self, topic_name: str) -> int:
        return self.context.graph.count("MS", self._resolve(topic_name, "topic"))

    def destroy_node(self) -> None:
        for entity in reversed(self._entities):
            if isinstance(entity, Timer):
                entity.cancel()
            else:
                try:
                    entity.destroy()
                except zenoh.ZError:
                    pass  # the session is already closing
        self._entities.clear()
        try:
            self._node_token.undeclare()
        except zenoh.ZError:
            pass


@dataclass(frozen=True)
class TopicEndpoint:
    topic: str
    type_name: str
    type_hash: str
    qos: QoSProfile
    node: str


class _Parameter:
    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value
