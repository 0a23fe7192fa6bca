"""Web viewer node: draws the rollout topics in a browser (viser) and drives the replay from it.

Topics in: /rollout/robot (RobotDescription, latched), /rollout/state (State; keep-last 1, so
only the newest state is drawn and stale ones are dropped), /rollout/reward_terms,
/rollout/episodes, and from a replay /rollout/playback/status and /rollout/playback/timeline
(latched); with a replay's `compare:=B`, B's /compare/rollout/robot, /compare/rollout/state
and /compare/rollout/playback/timeline (drawn as a ghost, in the plots and a summary).
Services called (asynchronously, newest request wins, never blocking the page):
/replay/seek_step, /replay/seek_episode (rollout_msgs), /replay/pause, /replay/resume,
/replay/set_rate (rosbag2_interfaces), /replay/set_loop (std_srvs/SetBool, when the replay
offers it) and, live, /sim/set_policy_enabled (std_srvs/SetBool).

    rollout run viser_bridge --ros-args -p port:=8080 -p max_envs:=64 -p envs:=0-15,3000
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


from rollout import topics
from rollout.cameras import parse_preset
from rollout.errors import ParameterError
from rollout.runtime import LATCHED, Node, QoSProfile, ok, run_node
from rollout.runtime.params import parse_env_ids
from rollout.viewer import Viewer, ViewerCallbacks


@dataclass(frozen=True)
class ViserBridgeParams:
    host: str = "127.0.0.1"
    """Address to serve the page on (0.0.0.0: every interface)."""
    port: int = 8080
    """TCP port of the page (0: any free port)."""
    max_envs: int = 64
    """Draw at most this many envs (the first ones, or of `envs`)."""
    envs: str = ""
    """Envs to draw, e.g. 0-15,3000 (default: the first max_envs); the Env box, a Find moment or a
    click draws any other env in place of one of them, while plots and Find cover every env."""
    trail_length: int = 100
    """Base positions kept per env for the trajectory trails (0: no trails)."""
    history: int = 600
    """States kept to pause and scrub a live run."""
    camera: str = "side"
    """Initial camera: top, side, front or follow."""
    replay_node: str = topics.REPLAY_NODE
    """Name of the replay node whose services (/<name>/seek_step, ...) the controls call."""
    service_timeout: float = 5.0
    """Seconds before a service call without an answer is given up."""
    play_on_connect: bool = False
    """Replay: resume the (paused) replay once the first page has drawn the scene, so that playback
    does not run ahead of the page."""


# ----------------------------------------------------------------------------- pure functions


def check_params(p: ViserBridgeParams) -> None:
    """Raise a one-line `ParameterError` for a parameter that cannot work."""
    if not 0 <= p.port < 65536:
        raise ParameterError(f"port must be 0 (any free port) or 1-65535, got {p.port}")
    if p.max_envs < 1:
        raise ParameterError(f"max_envs must be at least 1, got {p.max_envs}")
    parse_env_ids(p.envs)
    if p.trail_length < 0 or p.history < 1:
        raise ParameterError(f"trail_length must be >= 0 and history >= 1, got {p.trail_length} and {p.history}")
    if not p.replay_node.strip("/"):
        raise ParameterError("replay_node is empty")
    if not p.service_timeout > 0:
        raise ParameterError(f"service_timeout must be positive, got {p.service_timeout}")
    parse_preset(p.camera)


class LatestCall:
    """Service calls on one channel: at most one in flight; while it is, only the newest waits.

    `submit(start)` takes a function that starts a call and returns a future (`add_done_callback`,
    `exception`, `result`); `report(text)` gets a line for every failed call. A call without an
    answer for `timeout` seconds no longer holds the channel.
    """

    def __init__(self, report: Callable[[str], None], timeout: float) -> None:
        self._report = report
        self._timeout = timeout
        self._lock = threading.Lock()
        self._busy_since: float | None = None
        self._next: tuple[Callable[[], Any], Callable[[Any], str | None]] | None = None

    def submit(self, start: Callable[[], Any], check: Callable[[Any], str | None] = lambda r: None) -> None:
        """`check(response)` returns a failure line or None."""
        with self._lock:
            now = time.monotonic()
            if self._busy_since is not None and now - self._busy_since < self._timeout:
                self._next = (start, check)
                return
            self._busy_since = now
        self._start(start, check)

    def _start(self, start: Callable[[], Any], check: Callable[[Any], str | None]) -> None:
        try:
            future = start()
        except Exception as e:  # noqa: BLE001 -- a call that cannot start is reported, the channel freed
            self._report(str(e))
            self._finish()
            return

        def done(f: Any) -> None:
            error = f.exception()
            if error is not None:
                self._report(str(error))
            else:
                line = check(f.result())
                if line:
                    self._report(line)
            self._finish()

        future.add_done_callback(done)

    def _finish(self) -> None:
        with self._lock:
            nxt, self._next = self._next, None
            self._busy_since = time.monotonic() if nxt is not None else None
        if nxt is not None:
            self._start(*nxt)


@dataclass(frozen=True)
class ReplayServices:
    """The service clients the page's controls call."""

    seek_step: Any
    seek_episode: Any
    pause: Any
    resume: Any
    set_rate: Any
    set_loop: Any
    policy: Any
    """The live sim's policy switch."""

    @classmethod
    def of(cls, node: Node, replay_node: str) -> ReplayServices:
        prefix = "/" + replay_node.strip("/")
        return cls(
            seek_step=node.create_client("rollout_msgs/srv/SeekStep", f"{prefix}/seek_step"),
            seek_episode=node.create_client("rollout_msgs/srv/SeekEpisode", f"{prefix}/seek_episode"),
            pause=node.create_client("rosbag2_interfaces/srv/Pause", f"{prefix}/pause"),
            resume=node.create_client("rosbag2_interfaces/srv/Resume", f"{prefix}/resume"),
            set_rate=node.create_client("rosbag2_interfaces/srv/SetRate", f"{prefix}/set_rate"),
            set_loop=node.create_client("std_srvs/srv/SetBool", f"{prefix}/set_loop"),
            policy=node.create_client("std_srvs/srv/SetBool", topics.POLICY_ENABLED_SERVICE),
        )


@dataclass(frozen=True)
class Channels:
    """One `LatestCall` per kind of control: a newer request of a kind replaces an older waiting one."""

    seek: LatestCall
    """seek_step and seek_episode: the newest target wins."""
    play: LatestCall
    rate: LatestCall
    loop: LatestCall
    policy: LatestCall


# ----------------------------------------------------------------------------- node


class ViserBridge(Node):
    def __init__(self, args: list[str] | None = None) -> None:
        super().__init__("viser_bridge", params=ViserBridgeParams, cli_args=args)
        p = self.params
        check_params(p)
        self.service_clients = ReplayServices.of(self, p.replay_node)
        self._channels = Channels(*(LatestCall(self._report, p.service_timeout) for _ in range(5)))
        self._source_seen = False
        self._warned: set[str] = set()
        self._asked_first = False
        self.viewer = Viewer(
            host=p.host,
            port=p.port,
            max_envs=p.max_envs,
            env_ids=parse_env_ids(p.envs),
            trail_length=p.trail_length,
            history=p.history,
            camera=p.camera,
            callbacks=ViewerCallbacks(
                seek_step=self.seek_step,
                set_paused=self.set_paused,
                set_rate=self.set_rate,
                set_loop=self.set_loop,
                step=self.step,
                seek_episode=self.seek_episode,
                set_policy_enabled=self.set_policy_enabled,
                page_ready=self.page_ready if p.play_on_connect else None,
            ),
        )
        v = self.viewer
        self.create_subscription("rollout_msgs/msg/RobotDescription", topics.ROBOT, v.on_robot, LATCHED)
        self.create_subscription("rollout_msgs/msg/State", topics.STATE, self.on_state, QoSProfile(depth=1))
        self.create_subscription("rollout_msgs/msg/RewardTerms", topics.REWARD_TERMS, v.on_reward_terms, 10)
        self.create_subscription("rollout_msgs/msg/EpisodeEvents", topics.EPISODES, v.on_episodes, 100)
        self.create_subscription("rollout_msgs/msg/PlaybackStatus", topics.PLAYBACK_STATUS, self.on_status, 10)
        self.create_subscription("rollout_msgs/msg/Timeline", topics.TIMELINE, v.on_timeline, LATCHED)
        for msg_type, topic, callback, qos in (  # a replay's second bag (compare:=B), aligned by step
            ("RobotDescription", topics.ROBOT, v.on_compare_robot, LATCHED),
            ("State", topics.STATE, v.on_compare_state, QoSProfile(depth=1)),
            ("Timeline", topics.TIMELINE, v.on_compare_timeline, LATCHED),
        ):
            self.create_subscription(f"rollout_msgs/msg/{msg_type}", topics.namespaced(topic, "compare"), callback, qos)
        self.create_timer(1.0, self._check_policy_service)
        self.create_timer(0.5, self._check_source)
        if ok():  # stopped while starting (another node failed): invite no one to a page going away
            later = " (the replay starts when the page has opened)" if p.play_on_connect else ""
            print(f"viser_bridge: open {v.url} in a browser{later}", flush=True)

    def on_state(self, msg: Any) -> None:
        self._source_seen = True  # a run shorter than the check's period still counts as seen
        self.viewer.on_state(msg)

    def on_status(self, msg: Any) -> None:
        self.viewer.on_status(msg)
        if msg.paused and not self.viewer.has_drawn and not self._asked_first:
            # a replay that starts paused has published no state yet: show its first
            self._asked_first = self.seek_step(int(msg.step))

    def _check_source(self) -> None:
        """Tell the page when the node publishing the states goes away (or comes back)."""
        if self.count_publishers(topics.STATE) > 0:
            self._source_seen = True
            self.viewer.source_back()
        elif self._source_seen:
            self._source_seen = False
            what = self.viewer.source_lost()
            self.get_logger().info(f"the {what} is gone; the page stays open at {self.viewer.url} (Ctrl-C quits)")

    def _report(self, line: str) -> None:
        """A failed call: in the log and on the page."""
        self.get_logger().warning(line)
        self.viewer.notify("Not done", line, color="orange")

    def page_ready(self) -> None:
        self.get_logger().info("a page has opened: playing")
        self.set_paused(False)

    # -- viewer callbacks (viser threads): start a call and return at once

    def _call(
        self, channel: LatestCall, cli: Any, request: Any, check: Callable[[Any], str | None] = lambda r: None
    ) -> bool:
        """Start a call of `cli` on `channel`; False (and a warning, once) when the service is not there."""
        if not cli.service_is_ready():
            if cli.srv_name not in self._warned:  # once per service, not on every click
                self._warned.add(cli.srv_name)
                self._report(f"service {cli.srv_name} is not available; is the node that offers it running?")
            return False
        self._warned.discard(cli.srv_name)
        timeout = self.params.service_timeout
        channel.submit(lambda: cli.call_async(request, timeout_sec=timeout), check)
        return True

    def seek_step(self, step: int) -> bool:
        cli = self.service_clients.seek_step
        req = cli.srv_type.Request(step=max(int(step), 0))
        return self._call(self._channels.seek, cli, req, lambda r: None if r.success else f"cannot seek to step {step}")

    def step(self, delta: int) -> None:
        self.set_paused(True)
        self.seek_step(self.viewer.neighbour_step(delta))

    def seek_episode(self, env: int, direction: int) -> None:
        cli = self.service_clients.seek_episode
        req = cli.srv_type.Request(env_id=int(env), direction=1 if direction > 0 else -1)
        way = "next" if direction > 0 else "previous"
        self._call(self._channels.seek, cli, req, lambda r: None if r.success else f"env {env} has no {way} episode")

    def set_paused(self, paused: bool) -> None:
        cli = self.service_clients.pause if paused else self.service_clients.resume
        self._call(self._channels.play, cli, cli.srv_type.Request())

    def set_rate(self, rate: float) -> None:
        cli = self.service_clients.set_rate
        req = cli.srv_type.Request(rate=float(rate))
        self._call(self._channels.rate, cli, req, lambda r: None if r.success else f"the replay refused rate {rate}")

    def set_loop(self, loop: bool) -> None:
        cli = self.service_clients.set_loop
        self._call(self._channels.loop, cli, cli.srv_type.Request(data=bool(loop)))

    def set_policy_enabled(self, enabled: bool) -> None:
        cli = self.service_clients.policy
        req = cli.srv_type.Request(data=bool(enabled))
        self._call(self._channels.policy, cli, req, lambda r: None if r.success else f"the sim refused: {r.message}")

    def _check_policy_service(self) -> None:
        self.viewer.policy_available = self.service_clients.policy.service_is_ready()

    def destroy_node(self) -> None:
        self.viewer.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(ViserBridge, args)


if __name__ == "__main__":
    main()
