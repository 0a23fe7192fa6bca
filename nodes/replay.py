"""Replay a recorded rollout bag onto the graph, with rosbag2's player controls.

Publishes every topic of the bag (or of `topics`) on its recorded name with its recorded type:
the stored CDR bytes, header stamps as recorded. Latched topics (/rollout/robot,
/robot_description: any topic recorded from a transient-local publisher) are published latched
and again after every seek. Also publishes:

    /rollout/playback/timeline  rollout_msgs/Timeline, latched, once (reward series, episode ends)
    /rollout/playback/status    rollout_msgs/PlaybackStatus, on every change and at 10 Hz

With `compare:=B`, a second recording is played along, aligned by control step: with every
State of the bag, B's State of the same step (its last before, past B's end) on
/compare/rollout/state, and B's RobotDescription and Timeline (latched, for the same envs) on
/compare/rollout/robot and /compare/rollout/playback/timeline. The controls act on the bag; B
follows.

Services (rosbag2_interfaces/srv/* unless noted): /replay/pause, resume, toggle_paused,
is_paused, set_rate, get_rate, seek, play_next, burst; /replay/seek_step (rollout_msgs/SeekStep)
and /replay/seek_episode (rollout_msgs/SeekEpisode), which while paused also publish the target
step. With `rate:=0` the topics are published lossless (publishers wait for slow subscribers) as
fast as the subscribers take them: for offline consumers such as the video encoder (with
`wait_for_subscribers:=1` so that one started alongside misses nothing).

    ros2 run rollout replay --ros-args -p bag:=rollouts/run1 -p rate:=0.5 -p loop:=true
    ros2 run rollout replay --ros-args -p bag:=rollouts/run1 -p compare:=rollouts/run2
    ros2 run rollout replay --ros-args -p bag:=rollouts/rank0,rollouts/rank1   # shards as one rollout
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rollout import topics
from rollout.bag import Bag
from rollout.bag.latest import latest_recording
from rollout.codec import default_store, get_service, get_type
from rollout.errors import BagError, ParameterError, RolloutError
from rollout.replay import Item, Player, PlayerStatus, episode_ends, rate_error, timeline
from rollout.replay.align import StepAlign
from rollout.replay.shards import ShardSet, bag_paths, open_rollout
from rollout.runtime import LATCHED, LOSSLESS, Node, QoSProfile, run_node, shutdown

TICK_S = 0.002  # how often due messages are published (the playback timing grain)
STATUS_S = 0.1  # status heartbeat
BATCH_S = 0.02  # at rate 0, publish for at most this long before serving services again
LINGER_S = 0.3  # after the last message, before exiting: lets subscribers take what is in flight
GRACE_S = 0.2  # after the awaited subscribers appear, before playing: their routes settle


@dataclass(frozen=True)
class ReplayParams:
    bag: str = ""
    """Bag to play: a rosbag2 folder or a .mcap file, or "latest": the newest recording under rollouts/ (required);
    several, comma separated (rollouts/rank0,rollouts/rank1), play as one rollout with their envs concatenated."""
    rate: float = 1.0
    """Playback speed, 0.1 to 4.0; 0 plays as fast as the subscribers take it (lossless)."""
    pace: str = "sim"
    """What rate 1 means: "sim" = simulated time (step x dt, however fast the sim ran while
    recording); "recorded" = the recorded log times, as ros2 bag play does."""
    loop: bool = False
    """Start over at the end."""
    start_offset: float = 0.0
    """Seconds into the bag to start at (and to loop back to)."""
    start_paused: bool = False
    """Start paused (the latched topics and the timeline are still published)."""
    topics: str = ""
    """Comma-separated topics to play (default: every topic in the bag)."""
    exit_at_end: bool | None = None
    """Exit once the last message has been played (default: true unless loop)."""
    wait_for_subscribers: int = 0
    """Hold playback (not the latched topics) until this many subscriptions match one played topic;
    with rate 0, set 1 so an offline consumer started alongside misses nothing."""
    env_ids: tuple[int, ...] = ()
    """Envs whose per-term reward series go into the timeline, e.g. [0,3,5] (default: all, up to the first 64);
    every env's total and each term's extremes per env are in it whatever this says."""
    compare: str = ""
    """A second bag played along, aligned by step, under /compare (a viewer draws it as a ghost)."""


def topic_list(text: str) -> list[str]:
    """'/a, /b' -> ['/a', '/b']."""
    return [t.strip() for t in text.split(",") if t.strip()]


def open_rollout_bag(path: str) -> Bag | ShardSet:
    """Open `path` and check it is a rollout recording, or raise a one-line error.

    `path` may name a set of shards, "A,B" (or one bag of namespaced sims): they play as one rollout."""
    if not path:
        raise ParameterError("no bag given: --ros-args -p bag:=PATH (a bag folder or .mcap file, or latest)")
    paths = bag_paths(path)
    if paths == ["latest"]:
        paths = [str(latest_recording())]
    bag = open_rollout(paths)
    try:
        if topics.STATE not in bag.topics or bag.count(topics.STATE) == 0:
            have = ", ".join(bag.topics) or "none"
            raise BagError(f"{path} is not a rollout recording: it has no {topics.STATE} messages (topics: {have})")
    except BaseException:
        bag.close()
        raise
    return bag


def compare_notes(robot_a: object, robot_b: object) -> list[str]:
    """What a user should know about comparing two recordings of these robots (one line each)."""
    notes = []
    na, nb = int(robot_a.num_envs), int(robot_b.num_envs)
    if na != nb:
        notes.append(f"the bag has {na} envs, compare {nb}: the common envs 0-{min(na, nb) - 1} are compared")
    if (robot_a.model, robot_a.model_format) != (robot_b.model, robot_b.model_format):
        notes.append(f"compare records another model ({robot_b.env} vs {robot_a.env}): drawn with its own")
    return notes


def check_params(p: ReplayParams) -> None:
    if (err := rate_error(p.rate)) is not None:
        raise ParameterError(err)
    if p.start_offset < 0:
        raise ParameterError(f"start_offset must be >= 0 seconds, not {p.start_offset}")
    if p.wait_for_subscribers < 0:
        raise ParameterError(f"wait_for_subscribers must be >= 0, not {p.wait_for_subscribers}")


def status_message(s: PlayerStatus, stamp_ns: int) -> object:
    """rollout_msgs/PlaybackStatus from a player status."""
    Status = get_type("rollout_msgs/msg/PlaybackStatus")
    msg = Status(
        step=s.step, first_step=s.first_step, last_step=s.last_step, paused=s.paused,
        loop=s.loop, rate=s.rate, progress=s.progress, finished=s.finished,
    )  # fmt: skip
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.bag_time.sec, msg.bag_time.nanosec = divmod(s.bag_time, 1_000_000_000)
    return msg


def message_type(bag: Bag, topic: str) -> str:
    """The recorded type of `topic`, registered from the bag's schema when this install lacks it."""
    name = bag.topic(topic).type
    try:
        get_type(name)
    except RolloutError:
        default_store().add_schema(name, bag.schema(name))
    return name


class Replay(Node):
    def __init__(self, args: list[str] | None = None) -> None:
        super().__init__(topics.REPLAY_NODE, params=ReplayParams, cli_args=args)
        p = self.params
        check_params(p)
        self.bag = open_rollout_bag(p.bag)  # everything that can fail, before anything is published
        if isinstance(self.bag, ShardSet):
            for line in [self.bag.summary, *self.bag.notes]:
                self.get_logger().info(line)
        ends = episode_ends(self.bag)  # read once: the player seeks episodes, the timeline shows them
        episodes = ends[:2]
        self.timeline = timeline(self.bag, p.env_ids or None, episodes=ends)
        self.hold = p.wait_for_subscribers > 0 and not p.start_paused  # paused until they come
        self.player = Player(
            self.bag, rate=p.rate, loop=p.loop, start_offset=p.start_offset, start_paused=p.start_paused or self.hold,
            topics=topic_list(p.topics) or None, episodes=episodes, pace=p.pace,
        )  # fmt: skip
        self.exit_at_end = (not p.loop) if p.exit_at_end is None else p.exit_at_end
        data_qos = LOSSLESS if p.rate == 0 else QoSProfile(depth=10)
        self.pubs = {
            t: self.create_publisher(message_type(self.bag, t), t, LATCHED if self.bag.topic(t).latched else data_qos)
            for t in self.player.topics
        }
        self.status_pub = self.create_publisher("rollout_msgs/msg/PlaybackStatus", topics.PLAYBACK_STATUS, 10)
        self.timeline_pub = self.create_publisher("rollout_msgs/msg/Timeline", topics.TIMELINE, LATCHED)
        self.timeline.header.stamp.sec, self.timeline.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
        self.timeline_pub.publish(self.timeline)
        self.compare_bag: Bag | None = None
        if p.compare:
            self.open_compare(p.compare)

        for verb, srv, handler in [
            ("pause", "rosbag2_interfaces/srv/Pause", self.on_pause),
            ("resume", "rosbag2_interfaces/srv/Resume", self.on_resume),
            ("toggle_paused", "rosbag2_interfaces/srv/TogglePaused", self.on_toggle),
            ("is_paused", "rosbag2_interfaces/srv/IsPaused", self.on_is_paused),
            ("set_rate", "rosbag2_interfaces/srv/SetRate", self.on_set_rate),
            ("get_rate", "rosbag2_interfaces/srv/GetRate", self.on_get_rate),
            ("seek", "rosbag2_interfaces/srv/Seek", self.on_seek),
            ("play_next", "rosbag2_interfaces/srv/PlayNext", self.on_play_next),
            ("burst", "rosbag2_interfaces/srv/Burst", self.on_burst),
            ("seek_step", "rollout_msgs/srv/SeekStep", self.on_seek_step),
            ("seek_episode", "rollout_msgs/srv/SeekEpisode", self.on_seek_episode),
            ("set_loop", "std_srvs/srv/SetBool", self.on_set_loop),
        ]:
            self.create_service(get_service(srv), f"~/{verb}", handler)
        self._last_status: tuple | None = None
        self._exit_at: float | None = None
        self._play_at: float | None = None
        self.ticker: object | None = None
        self.create_timer(STATUS_S, lambda: self.publish_status(force=True))
        s = self.player.status()
        self.get_logger().info(
            f"playing {getattr(self.bag, 'label', self.bag.path)}: {self.player.message_count} messages on {len(self.pubs)} topics, "
            f"steps {s.first_step}..{s.last_step}, {(self.player.end_time - self.player.start_time) / 1e9:.2f} s "
            f"at rate {p.rate:g}{', looping' if p.loop else ''}{', paused' if p.start_paused else ''}"
        )
        self.flush()

    # -- playing

    def open_compare(self, path: str) -> None:
        """Open B, publish its robot and timeline, and pair its states with the bag's."""
        b = self.compare_bag = open_rollout_bag(path)
        if topics.ROBOT not in b.topics or topics.ROBOT not in self.bag.topics:
            raise BagError(f"compare: {path} and {self.bag.path} both need a {topics.ROBOT} message")
        robot_a, robot_b = self.bag.decode(topics.ROBOT, 0), b.decode(topics.ROBOT, 0)
        for note in compare_notes(robot_a, robot_b):
            self.get_logger().info(f"compare: {note}")
        common = np.asarray(self.timeline.env_ids, np.int64)
        common = common[common < int(robot_b.num_envs)]
        tl = timeline(b, common)
        tl.header.stamp = self.timeline.header.stamp
        ns = "compare"
        self.create_publisher(message_type(b, topics.ROBOT), topics.namespaced(topics.ROBOT, ns), LATCHED).publish(
            b.raw(topics.ROBOT, 0).data
        )
        self.create_publisher("rollout_msgs/msg/Timeline", topics.namespaced(topics.TIMELINE, ns), LATCHED).publish(tl)
        qos = LOSSLESS if self.params.rate == 0 else QoSProfile(depth=10)
        self.compare_pub = self.create_publisher(message_type(b, topics.STATE), topics.namespaced(topics.STATE, ns), qos)
        self.align = StepAlign(self.bag, b)
        self.get_logger().info(f"compare: {b.path} plays along, aligned by step, on /{ns}/rollout/*")

    def publish_items(self, items: list[Item]) -> None:
        for item in items:
            self.pubs[item.topic].publish(item.data)
            if self.compare_bag is not None and item.topic == topics.STATE:
                j = self.align.b_index(item.log_time)
                if j is not None:
                    self.compare_pub.publish(self.compare_bag.raw(topics.STATE, j).data)

    def flush(self) -> None:
        """Publish what is due, then the status if it changed."""
        deadline = time.monotonic() + BATCH_S
        while True:
            items = self.player.due(limit=64)
            self.publish_items(items)
            if not items or self.player.rate > 0 or time.monotonic() > deadline:
                break
        self.publish_status()
        self.schedule()

    def schedule(self) -> None:
        """Tick while there is something to play, wait for or exit on; not while paused (saves a CPU)."""
        idle = self.player.wait_ns() is None and not self.hold and not (self.player.finished and self.exit_at_end)
        if idle and self.ticker is not None:
            self.ticker.cancel()
            self.ticker = None
        elif not idle and self.ticker is None:
            self.ticker = self.create_timer(TICK_S, self.tick)

    def tick(self) -> None:
        if self.hold:
            self.await_subscribers()
        if self.player.wait_ns() == 0:
            self.flush()
        if self.player.finished and self.exit_at_end:
            if self._exit_at is None:
                self._exit_at = time.monotonic() + LINGER_S
                self.get_logger().info("played to the end")
            elif time.monotonic() >= self._exit_at:
                shutdown()
        else:
            self._exit_at = None

    def await_subscribers(self) -> None:
        """Start playing once `wait_for_subscribers` subscriptions match a played topic (and a grace period passed)."""
        if self._play_at is None:
            counts = [pub.get_subscription_count() for t, pub in self.pubs.items() if not self.bag.topic(t).latched]
            if max(counts, default=0) >= self.params.wait_for_subscribers:
                self._play_at = time.monotonic() + GRACE_S
        elif time.monotonic() >= self._play_at:
            self.hold = False
            self.player.resume()
            self.get_logger().info("subscribers are here: playing")

    def publish_status(self, force: bool = False) -> None:
        s = self.player.status()
        key = (s.step, s.paused, s.rate, s.loop, s.finished, self.player.version)
        if force or key != self._last_status:
            self._last_status = key
            self.status_pub.publish(status_message(s, time.time_ns()))

    # -- services

    def on_pause(self, req, res):
        self.hold = False
        self.player.pause()
        self.flush()
        return res

    def restart_if_finished(self) -> None:
        """Resume at the end starts over (at start_offset), as a media player's Play does."""
        if self.player.finished:
            self.player.seek(self.player.start_time + int(self.params.start_offset * 1e9))

    def on_resume(self, req, res):
        self.hold = False
        self.restart_if_finished()
        self.player.resume()
        self.flush()
        return res

    def on_toggle(self, req, res):
        self.hold = False
        if self.player.paused or self.player.finished:
            self.restart_if_finished()
            self.player.resume()
        else:
            self.player.pause()
        self.flush()
        return res

    def on_is_paused(self, req, res):
        res.paused = self.player.is_paused()
        return res

    def on_set_rate(self, req, res):
        res.success = self.player.set_rate(req.rate)
        if not res.success:
            self.get_logger().warning(rate_error(req.rate) or "")
        self.flush()
        return res

    def on_set_loop(self, req, res):
        self.player.set_loop(bool(req.data))
        self.exit_at_end = self.exit_at_end and not req.data
        res.success = True
        self.flush()
        return res

    def on_get_rate(self, req, res):
        res.rate = self.player.get_rate()
        return res

    def on_seek(self, req, res):
        res.success = self.player.seek(req.time.sec * 1_000_000_000 + req.time.nanosec)
        self.flush()
        return res

    def on_play_next(self, req, res):
        self.publish_items(self.player.due())  # latched topics a seek queued go first
        item = self.player.play_next()
        res.success = item is not None
        if item is not None:
            self.publish_items([item])
        self.flush()
        return res

    def on_burst(self, req, res):
        self.publish_items(self.player.due())
        items = self.player.burst(int(req.num_messages))
        self.publish_items(items)
        res.actually_burst = len(items)
        self.flush()
        return res

    def on_seek_step(self, req, res):
        step = self.player.seek_step(int(req.step))
        res.success, res.step = step is not None, self.player.status().step
        self.flush()
        return res

    def on_seek_episode(self, req, res):
        step = self.player.seek_episode(int(req.env_id), int(req.direction))
        res.success, res.step = step is not None, self.player.status().step
        self.flush()
        return res

    def destroy_node(self) -> None:
        super().destroy_node()
        self.bag.close()
        if self.compare_bag is not None:
            self.compare_bag.close()


def main(args: list[str] | None = None) -> None:
    run_node(Replay, args)


if __name__ == "__main__":
    main()
