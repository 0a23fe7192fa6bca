"""Foxglove live: a client built on Foxglove's own protocol package (@foxglove/ws-protocol, as the
Foxglove app) connects to the foxglove_bridge of a running record graph, lists its channels,
subscribes, and decodes /rollout/state and /rollout/reward_terms with
@foxglove/rosmsg2-serialization to exactly what the recorder wrote (the very bytes); it calls the
sim's policy switch, and seek and seek_step on a replay and sees the step change. A port in use, a
client that disconnects mid-message and a subscription to an unknown channel each leave one clear
log line and the graph as it was (the bag has every step)."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import rollout.runtime as rt
from rollout import topics as T
from rollout.bag import Bag
from rollout.replay.player import sim_pacing
from rollout.runtime import Node
from recordings import record_humanoid
from test_foxglove_decode import JS, NODE, as_json, differences  # skips this module where Node.js is missing
from ports import free_port

ROOT = Path(__file__).resolve().parents[1]
LAYOUT = ROOT / "foxglove" / "rollout_layout.json"

if not (JS / "node_modules" / "@foxglove" / "ws-protocol").is_dir():
    pytest.skip("tests/js/node_modules lacks @foxglove/ws-protocol: run `npm ci` in tests/js", allow_module_level=True)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Launch:
    """`rollout launch FILE args...` in its own process; its output collected line by line.
    own_router: on a router port of its own, away from this session's (and the probe's)."""

    def __init__(self, *args: str, own_router: bool = False) -> None:
        cmd = [sys.executable, "-m", "rollout.cli", "launch", *args]
        env = dict(os.environ, ROLLOUT_ROUTER=f"tcp/127.0.0.1:{free_port()}") if own_router else None
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)  # type: ignore[arg-type]
        self._reader.start()

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 90.0) -> str:
        """The first output line matching `pattern` (a regex), waiting for it."""
        found: list[str] = []

        def seen() -> bool:
            assert self.proc.poll() is None or found or any(re.search(pattern, x) for x in self.lines), self.text()
            found[:] = [x for x in self.lines if re.search(pattern, x)][:1]
            return bool(found)

        wait_until(seen, timeout, f"{pattern!r} in the launch output")
        return found[0]

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(60)
        self._reader.join(5)
        return self.text()


def foxglove_client(plan: dict, timeout: float = 60) -> subprocess.Popen:
    """Start tests/js/foxglove_client.mjs with `plan`; `result(proc)` reads what it printed."""
    plan = {"timeoutMs": int(timeout * 1000) - 5000, **plan}
    cmd = [NODE, str(JS / "foxglove_client.mjs"), json.dumps(plan)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen, timeout: float = 60) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out)


def layout_topics() -> set[str]:
    text = LAYOUT.read_text()
    return {t for t in re.findall(r'"(/[A-Za-z0-9_/]+)', text) if not t.startswith("/rollout/playback")}


@pytest.fixture(scope="module")
def probe() -> Iterator[Callable[[], Node]]:
    """A node in this process, to count who subscribes in the graph (opened once a launch hosts the router)."""
    made: list[Node] = []

    def node() -> Node:
        if not made:
            rt.init([], signals=False)
            made.append(Node("_foxglove_probe"))
        return made[0]

    yield node
    if made:
        made[0].destroy_node()
        rt.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Launch, int, Path]]:
    """A record graph with the bridge, running until a test stops it: (launch, bridge port, bag)."""
    port, bag = free_port(), tmp_path_factory.mktemp("live") / "run"
    launch = Launch("record.launch.py", "num_envs:=3", "steps:=0", "tf_envs:=0", "seed:=2", "foxglove:=true",
                    f"foxglove_port:={port}", f"out:={bag}")  # fmt: skip
    try:
        launch.wait_for(r"\[foxglove_bridge\].*offering service /sim/set_policy_enabled")
        for topic in ("/rollout/state", "/rollout/reward_terms", "/tf"):
            launch.wait_for(rf"\[foxglove_bridge\].*advertising {topic} ")
        yield launch, port, bag
    finally:
        launch.stop()


# ----------------------------------------------------------------------------- a misbehaving client


class RawWebSocket:
    """Just enough of a WebSocket client to misbehave: it can stop in the middle of a frame."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)) + b"\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: foxglove.sdk.v1\r\n\r\n"
        )
        self.local_port = self.sock.getsockname()[1]
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self) -> tuple[int, bytes]:
        """The next frame the server sends: (opcode, payload); servers never mask."""
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._take(8))[0]
        return b0 & 0x0F, self._take(n)

    def subscribe_until_data(self, topic: str, also: int) -> None:
        """Subscribe to `topic` (and to channel id `also`) and read until its first message arrives;
        when the topic is advertised anew (the bridge does that when the SDK refused a subscription
        that raced the advertisement), subscribe to the new channel."""
        sub = 0
        while True:
            op, payload = self.frame()
            if op == 2:
                return
            message = json.loads(payload) if op == 1 else {}
            for channel in message.get("channels", []) if message.get("op") == "advertise" else []:
                if channel["topic"] == topic:
                    sub += 1
                    wanted = [{"id": sub, "channelId": channel["id"]}] + ([{"id": 1000, "channelId": also}] if sub == 1 else [])
                    self.send_text(json.dumps({"op": "subscribe", "subscriptions": wanted}))

    def send_text(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(bytes([0x81, 0x80 | 126]) + struct.pack(">H", len(data)) + mask + masked)

    def cut_mid_frame(self) -> None:
        """Announce a 64 KB binary frame, send 100 bytes of it, and drop the connection (RST)."""
        self.sock.sendall(bytes([0x82, 0x80 | 127]) + struct.pack(">Q", 65536) + os.urandom(4) + os.urandom(100))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def test_a_port_in_use_a_rude_client_and_an_unknown_channel_leave_clear_lines_and_the_graph_running(
    live: tuple[Launch, int, Path], probe: Callable[[], Node]
) -> None:
    launch, port, _ = live
    node = probe()
    wait_until(lambda: node.count_subscribers(T.STATE) == 1, 20, "the recorder alone on /rollout/state")

    rude = RawWebSocket(port)
    rude.subscribe_until_data(T.STATE, also=4242)
    assert node.count_subscribers(T.STATE) == 2  # the bridge subscribed for the client
    for _ in range(2):
        rude.frame()  # messages are flowing; the next one is left unread
    launch.wait_for(r"\[ERROR\].*\[foxglove_bridge\]: websocket: .*unknown channel: 4242")
    rude.cut_mid_frame()
    launch.wait_for(rf"\[ERROR\].*\[foxglove_bridge\]: websocket: Error receiving from client 127\.0\.0\.1:{rude.local_port}")
    launch.wait_for(rf"\[foxglove_bridge\]: websocket: Unregistered client 127\.0\.0\.1:{rude.local_port}")
    launch.wait_for(r"\[foxglove_bridge\]: client \d+ unsubscribed from /rollout/state")
    wait_until(lambda: node.count_subscribers(T.STATE) == 1, 20, "the bridge to drop its subscription")

    second = subprocess.run(
        [sys.executable, "-m", "rollout.nodes.foxglove_bridge", "--ros-args", "-p", f"port:={port}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 2
    assert second.stderr.strip().splitlines()[-1] == (
        f"foxglove_bridge: error: port {port} is already in use; stop the other Foxglove server or choose another port"
    ), second.stderr
    assert "Traceback" not in second.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "rollout.nodes.foxglove_bridge", "--ros-args", "-p", "port:=70000"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (bad.returncode, bad.stderr.strip()) == (
        2, "foxglove_bridge: error: port must be 0 (any free port) or 1-65535, got 70000"
    ), bad.stderr
    assert launch.proc.poll() is None, launch.text()  # the graph and its bridge carry on


def test_a_foxglove_client_decodes_the_live_graph_to_what_the_recorder_wrote(
    live: tuple[Launch, int, Path], probe: Callable[[], Node]
) -> None:
    launch, port, bag_path = live
    node = probe()
    wait_until(lambda: node.count_subscribers(T.STATE) == 1, 20, "the recorder alone on /rollout/state")
    plan = {
        "url": f"ws://127.0.0.1:{port}",
        "topics": {T.STATE: 5, T.REWARD_TERMS: 5, T.ROBOT: 1},
        "calls": [
            {"service": T.POLICY_ENABLED_SERVICE, "request": {"data": False}},
            {"service": T.POLICY_ENABLED_SERVICE, "request": {"data": True}},
        ],
        "holdMs": 3000,
    }
    client = foxglove_client(plan)
    wait_until(lambda: node.count_subscribers(T.STATE) == 2, 30, "the bridge to subscribe while the client looks")
    fox = result(client)
    wait_until(lambda: node.count_subscribers(T.STATE) == 1, 20, "the bridge to unsubscribe once the client is gone")
    output = launch.stop()
    assert "no gaps" in output, output  # nothing the tests did to the bridge cost the recorder a step

    assert fox["protocol"] == "foxglove.sdk.v1"
    assert [c["response"] for c in fox["calls"]] == [
        {"success": True, "message": "policy off"},
        {"success": True, "message": "policy on"},
    ]
    channels = {c["topic"]: c for c in fox["channels"]}
    assert layout_topics() <= set(channels)  # the shipped layout finds its topics live too
    with Bag(bag_path) as bag:
        assert set(channels) == set(bag.topics)
        for name, topic in bag.topics.items():
            c = channels[name]
            assert (c["schemaName"], c["schemaEncoding"], c["encoding"]) == (topic.type, "ros2msg", "cdr")
            assert c["schema"] == bag.schema(topic.type)
        assert base64.b64decode(fox["messages"][T.ROBOT][0]["data"]) == bytes(bag.raw(T.ROBOT, 0).data)
        for name in (T.STATE, T.REWARD_TERMS):
            steps = bag.steps(name)
            got = fox["messages"][name]
            assert len(got) == 5
            for msg in got:
                i = int(np.searchsorted(steps, msg["value"]["step"]))
                assert steps[i] == msg["value"]["step"]
                assert base64.b64decode(msg["data"]) == bytes(bag.raw(name, i).data), f"{name} step {steps[i]}"
                ours = as_json(bag.decode(name, i).to_dict())
                assert not differences(ours, msg["value"]), differences(ours, msg["value"])
            assert len({m["value"]["step"] for m in got}) == 5  # five different steps, not one five times


def test_a_launch_whose_foxglove_port_is_taken_ends_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        launch = Launch("record.launch.py", "num_envs:=2", "steps:=0", "foxglove:=true", f"foxglove_port:={port}",
                        f"out:={tmp_path / 'run'}", own_router=True)  # fmt: skip
        assert launch.proc.wait(120) == 1
    out = launch.stop()
    line = f"foxglove_bridge: error: port {port} is already in use; stop the other Foxglove server or choose another port"
    assert f"[foxglove_bridge] {line}\n" in out and "[launch] failed: foxglove_bridge" in out, out
    assert "Traceback" not in out


def test_a_foxglove_client_seeks_a_replay_through_its_services(tmp_path: Path) -> None:
    bag_path = record_humanoid(tmp_path / "run", num_envs=2, steps=40, seed=4, tf_envs=(0,))
    with Bag(bag_path) as bag:  # the replay's clock follows sim time: seek takes a time on that clock
        step20_time = int(sim_pacing(bag)(bag.log_times(T.STATE))[20])
    port = free_port()
    launch = Launch("replay.launch.py", f"bag:={bag_path}", "view:=false", "start_paused:=true", "loop:=true",
                    "foxglove:=true", f"foxglove_port:={port}", own_router=True)  # fmt: skip
    try:
        launch.wait_for(r"\[foxglove_bridge\].*offering service /replay/seek_step")
        launch.wait_for(r"\[foxglove_bridge\].*advertising /rollout/playback/status ")
        sec, nanosec = divmod(step20_time, 1_000_000_000)
        plan = {
            "url": f"ws://127.0.0.1:{port}",
            "topics": {T.PLAYBACK_STATUS: 1, T.STATE: 0},  # paused: no state until a seek
            "calls": [
                {"service": "/replay/seek", "request": {"time": {"sec": sec, "nanosec": nanosec}},
                 "until": {"topic": T.PLAYBACK_STATUS, "field": "step", "equals": 20}},
                {"service": "/replay/seek_step", "request": {"step": 7},
                 "until": {"topic": T.STATE, "field": "step", "equals": 7}},
            ],
        }  # fmt: skip
        fox = result(foxglove_client(plan))
    finally:
        launch.stop()
    services = {s["name"]: s["type"] for s in fox["services"]}
    for verb in ("pause", "resume", "seek", "set_rate"):
        assert services[f"/replay/{verb}"] == f"rosbag2_interfaces/srv/{verb.title().replace('_', '')}"
    assert services["/replay/seek_step"] == "rollout_msgs/srv/SeekStep"
    assert services["/replay/seek_episode"] == "rollout_msgs/srv/SeekEpisode"
    first = fox["messages"][T.PLAYBACK_STATUS][0]["value"]
    assert first["paused"] and first["step"] == 0
    seek, seek_step = fox["calls"]
    assert seek["response"] == {"success": True}
    assert seek["seen"]["step"] == 20 and seek["seen"]["paused"]
    assert seek_step["response"] == {"success": True, "step": 7}
    assert seek_step["seen"]["step"] == 7
