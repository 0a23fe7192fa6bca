"""A bag player that decides what to publish when, with rosbag2 player semantics and no middleware.

    with Bag("rollouts/run1") as bag:
        player = Player(bag, rate=2.0)
        while not player.finished:
            for item in player.due():          # what is due now, by the player's clock
                publish(item.topic, item.data)
            time.sleep(max(player.wait_ns() or 0, 1_000_000) / 1e9)

Every selected message is played once, in log-time order, at `rate` × the recorded pace (the
clock is injectable, so tests drive it by hand). Rate 0 means "as fast as the consumer takes
it": `due()` hands out the next messages at once and the consumer's publishing paces it.

The playhead is a position in one merged index of all selected topics, built from the bag's
index records at open (no message is read for it). Seeking by time is a binary search in that
index; seeking by step is `Bag.seek_step` on /rollout/state (O(log T) decodes of that topic
only). After every seek (and at start) each latched topic — one whose recorded publisher offered
transient-local durability, such as /rollout/robot and /robot_description — is handed out
again: its last message before the playhead, or its first one when the playhead is before it
(that message is then not played a second time when the playhead reaches it).

`seek_step` and `seek_episode` differ from a rosbag2 time seek in one way: while paused they
also hand out the messages of the target step (the step "is shown"), and the playhead moves to
the start of the next step, so `resume()` continues from there. A time `seek` hands out only
the latched topics, as rosbag2 does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rollout import topics as T
from rollout.bag import Bag
from rollout.errors import BagError, RolloutError

MIN_RATE, MAX_RATE = 0.1, 4.0
Clock = Callable[[], int]
"""A monotonic clock in nanoseconds (`time.monotonic_ns` by default)."""


@dataclass(frozen=True)
class Item:
    """One message to publish: `data` is the recorded CDR bytes (valid until the bag is closed)."""

    topic: str
    data: memoryview
    log_time: int
    """Recorded receive time, ns (header stamps inside `data` are untouched)."""
    latched: bool = False
    """A latched topic handed out again after a seek (not a step of the playhead)."""


@dataclass(frozen=True)
class PlayerStatus:
    """Where the player is; mirrors rollout_msgs/PlaybackStatus."""

    bag_time: int
    """Log time of the current message (the last one played, or the seek target), ns."""
    step: int
    """Control step of the /rollout/state message at or before `bag_time` (the one shown)."""
    first_step: int
    last_step: int
    paused: bool
    loop: bool
    rate: float
    progress: float
    """0..1 over the selected messages' log-time span."""
    finished: bool
    """The last message has been played and loop is off."""


def rate_error(rate: float) -> str | None:
    """Why `rate` is not a playback rate (0, or MIN_RATE..MAX_RATE), or None."""
    if rate == 0 or MIN_RATE <= rate <= MAX_RATE:
        return None
    return f"rate must be 0 (as fast as subscribers take it) or between {MIN_RATE} and {MAX_RATE}, not {rate}"


def episode_events(bag: Bag) -> tuple[np.ndarray, np.ndarray]:
    """(steps [E] int64, env_ids [E] int64): one row per env whose episode ended at that step,
    from /rollout/episodes (empty arrays when the bag has none)."""
    return episode_ends(bag)[:2]


def episode_ends(bag: Bag) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """`episode_events` with, per row, terminated [E] bool (False: truncated) and the reason the
    env gave (EpisodeEvents.reasons; "" when the recording has none)."""
    if T.EPISODES not in bag.topics or bag.count(T.EPISODES) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool), []
    steps, envs, flags, reasons = [], [], [], []
    for m in bag.iter_decoded(T.EPISODES):
        n = len(m.env_ids)
        envs.append(np.asarray(m.env_ids, np.int64))
        steps.append(np.full(n, m.step, np.int64))
        done = np.asarray(m.terminated, bool)
        flags.append(done if done.size == n else np.ones(n, bool))
        why = list(m.reasons)
        reasons += why if len(why) == n else [""] * n
    return np.concatenate(steps), np.concatenate(envs), np.concatenate(flags), reasons


def sim_pacing(bag: Bag) -> Callable[[np.ndarray], np.ndarray] | None:
    """A map from sorted log times to play times that follow simulated time, or None.

    A step's messages share one play time, t0 + (step - first step) × dt, t0 the bag's first log
    time; a message belongs to the step of the last /rollout/state at or before it (the sim
    publishes the state first). None for bags without states or a robot description.
    """
    if not all(name in bag.topics and bag.count(name) for name in (T.STATE, T.ROBOT)):
        return None
    dt_ns = float(bag.decode(T.ROBOT, 0).dt) * 1e9
    if dt_ns <= 0:
        return None
    state_t = bag.log_times(T.STATE)
    # steps from the small reward-terms messages when they pair one to one with the states
    pairs = T.REWARD_TERMS in bag.topics and bag.count(T.REWARD_TERMS) == state_t.size
    steps = bag.steps(T.REWARD_TERMS if pairs else T.STATE)
    t0 = bag.start_time

    def play_times(t: np.ndarray) -> np.ndarray:
        k = np.maximum(np.searchsorted(state_t, t, "right") - 1, 0)
        return np.maximum.accumulate(t0 + ((steps[k] - steps[0]) * dt_ns).astype(np.int64))

    return play_times


class Player:
    """Plays the messages of a `Bag` in log-time order; see the module docstring.

    Not thread-safe: call it from one thread (the node's spinning thread).
    """

    def __init__(
        self,
        bag: Bag,
        *,
        rate: float = 1.0,
        loop: bool = False,
        start_offset: float = 0.0,
        start_paused: bool = False,
        topics: Sequence[str] | None = None,
        clock: Clock = time.monotonic_ns,
        episodes: tuple[np.ndarray, np.ndarray] | None = None,
        pace: str = "recorded",
    ) -> None:
        """
        Args:
            bag: an open bag; the player reads it, the caller closes it.
            rate: playback speed, MIN_RATE..MAX_RATE, or 0 for "as fast as the consumer takes it".
            loop: start over at the end instead of finishing.
            start_offset: seconds after the first message to start (and to loop back) at.
            start_paused: start paused; the latched topics are still handed out at once.
            topics: play only these topics (default: every topic of the bag).
            clock: monotonic clock in ns.
            episodes: `episode_events(bag)` when the caller already has them (else read on the
                first `seek_episode`).
            pace: "recorded": play at the pace of the recorded log times (rosbag2's way);
                "sim": play at simulated time, step × dt, however fast the sim ran while recording.

        Raises:
            RolloutError: a bad rate or offset, an unknown topic, or nothing to play.
        """
        if (err := rate_error(rate)) is not None:
            raise RolloutError(err)
        if start_offset < 0:
            raise RolloutError(f"start_offset must be >= 0 seconds, not {start_offset}")
        self.bag = bag
        self._clock = clock
        names = list(bag.topics) if not topics else list(dict.fromkeys(topics))
        for name in names:
            bag.topic(name)  # BagError naming the topics there are
        self.topics: tuple[str, ...] = tuple(names)
        self._latched = [k for k, name in enumerate(names) if bag.topic(name).latched]

        # the merged index: one row per selected message, in log-time order (ties: file order)
        times, codes, idx = [], [], []
        for k, name in enumerate(names):
            t = bag.log_times(name)
            times.append(t)
            codes.append(np.full(t.size, k, np.int16))
            idx.append(np.arange(t.size, dtype=np.int64))
        t_all = np.concatenate(times) if times else np.zeros(0, np.int64)
        if t_all.size == 0:
            raise BagError(f"{bag.path}: no messages to play on {', '.join(names) or 'any topic'}")
        order = np.argsort(t_all, kind="stable")
        if pace not in ("recorded", "sim"):
            raise RolloutError(f"pace must be recorded or sim, not {pace!r}")
        pacing = sim_pacing(bag) if pace == "sim" else None
        self._t = t_all[order] if pacing is None else pacing(t_all[order])
        self._code = np.concatenate(codes)[order]
        self._idx = np.concatenate(idx)[order]
        self._pos_of = {k: np.flatnonzero(self._code == k) for k in self._latched}
        self._n = int(self._t.size)
        self._t0, self._t1 = int(self._t[0]), int(self._t[-1])

        # steps come from /rollout/state, whether or not it is played
        self._has_state = T.STATE in bag.topics and bag.count(T.STATE) > 0
        self._state_t = bag.log_times(T.STATE) if self._has_state else np.zeros(0, np.int64)
        if pacing is not None:
            self._state_t = pacing(self._state_t)
        self._steps: dict[int, int] = {}
        self._episodes = episodes

        offset_ns = round(start_offset * 1e9)
        if self._t0 + offset_ns > self._t1:
            raise RolloutError(
                f"start_offset {start_offset} s is past the end of the bag ({(self._t1 - self._t0) / 1e9:.3f} s long)"
            )
        self._start = int(np.searchsorted(self._t, self._t0 + offset_ns, "left"))
        self._rate = float(rate)
        self._loop = bool(loop)
        self._paused = bool(start_paused)
        self._finished = False
        self.version = 0
        """Bumped on every change a status display shows (pause, rate, seek, loop, finish)."""
        self._p = 0  # next merged position to play
        self._shown = self._t0  # bag time of the current message
        self._anchor_bag = self._anchor_wall = 0
        self._pending: list[Item] = []
        self._skip: set[int] = set()
        self._seek_to(self._start, self._t0 + offset_ns)

    # -- reading the bag

    def _item(self, pos: int, latched: bool = False) -> Item:
        name = self.topics[int(self._code[pos])]
        m = self.bag.raw(name, int(self._idx[pos]))
        return Item(name, m.data, m.log_time, latched)

    def _step_of(self, i: int) -> int:
        """Step of /rollout/state message `i` (one decode, cached)."""
        step = self._steps.get(i)
        if step is None:
            if len(self._steps) > 4096:
                self._steps.clear()
            step = self._steps[i] = int(self.bag.decode(T.STATE, i).step)
        return step

    def _state_index(self, t: int) -> int:
        """The /rollout/state message at or before bag time `t` (the first one when none is)."""
        return max(int(np.searchsorted(self._state_t, t, "right")) - 1, 0)

    # -- the clock

    def _now(self, now: int | None) -> int:
        return self._clock() if now is None else now

    def _bag_clock(self, now: int) -> int:
        """Bag time the clock has reached: frozen while paused or at rate 0."""
        if self._paused or self._rate == 0:
            return self._shown
        return self._anchor_bag + int((now - self._anchor_wall) * self._rate)

    def _anchor(self, bag_time: int, now: int | None = None) -> None:
        self._anchor_bag, self._anchor_wall = bag_time, self._now(now)

    def _changed(self) -> None:
        self.version += 1

    # -- control

    @property
    def paused(self) -> bool:
        return self._paused

    def is_paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        if not self._paused:
            self._shown = self._held_time(self._clock())
            self._paused = True
            self._changed()

    def _held_time(self, now: int) -> int:
        """Bag time to hold: the clock, but never past the next unplayed message."""
        t = self._bag_clock(now)
        if self._p < self._n:
            t = min(t, int(self._t[self._p]))
        return max(t, self._shown)

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._anchor(self._shown)
            self._changed()

    def toggle(self) -> bool:
        """Pause if playing, resume if paused; returns the new paused state."""
        self.resume() if self._paused else self.pause()
        return self._paused

    @property
    def rate(self) -> float:
        return self._rate

    def get_rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> bool:
        """Change the speed (0, or MIN_RATE..MAX_RATE); False, and no change, for any other value."""
        if rate_error(rate) is not None:
            return False
        now = self._clock()
        if not self._paused:
            self._shown = self._held_time(now)
            self._anchor(self._shown, now)
        self._rate = float(rate)
        self._changed()
        return True

    @property
    def loop(self) -> bool:
        return self._loop

    def set_loop(self, loop: bool) -> None:
        if bool(loop) != self._loop:
            self._loop = bool(loop)
            if loop and self._finished:
                self._wrap()
            self._changed()

    @property
    def finished(self) -> bool:
        """The last message has been played and loop is off."""
        return self._finished

    # -- seeking

    def _seek_to(self, pos: int, bag_time: int) -> None:
        """Move the playhead to merged position `pos`, the clock to `bag_time`, and queue the latched topics."""
        self._p = pos
        self._shown = bag_time
        self._anchor(bag_time)
        self._finished = False
        self._skip.clear()
        self._pending = []  # anything queued and not yet handed out belongs to the old position
        for k in self._latched:
            where = self._pos_of[k]
            if where.size == 0:
                continue
            j = int(np.searchsorted(where, pos, "left")) - 1
            q = int(where[max(j, 0)])
            if q >= pos:
                self._skip.add(q)
            self._pending.append(self._item(q, latched=True))
        self._changed()

    def seek(self, time_ns: int) -> bool:
        """Move the playhead to the first message logged at or after `time_ns` (clamped to the
        bag's span); paused stays paused. Latched topics are handed out again."""
        t = min(max(int(time_ns), self._t0), self._t1)
        self._seek_to(int(np.searchsorted(self._t, t, "left")), t)
        return True

    def seek_step(self, step: int) -> int | None:
        """Move the playhead to control step `step` (the first recorded one at or after it).

        Returns the step now at the playhead, or None (nothing changed) when the bag has no
        /rollout/state message at or after `step`. While paused, the messages of that step are
        handed out too and the playhead moves to the next step.
        """
        if not self._has_state:
            return None
        i = self.bag.seek_step(T.STATE, max(int(step), 0))
        if i >= self._state_t.size:
            return None
        t = int(self._state_t[i])
        self._seek_to(int(np.searchsorted(self._t, t, "left")), t)
        if self._paused:
            end = self._t1 + 1 if i + 1 >= self._state_t.size else int(self._state_t[i + 1])
            stop = int(np.searchsorted(self._t, end, "left"))
            for pos in range(self._p, stop):
                if pos not in self._skip:
                    self._pending.append(self._item(pos))
            self._skip -= set(range(self._p, stop))
            self._p = stop
            self._shown = max(t, int(self._t[stop - 1]))
        return self._step_of(i)

    def episode_starts(self, env_id: int) -> np.ndarray:
        """[K] int64 sorted steps where an episode of `env_id` starts: the first step, and the
        step after each of its episode ends (from /rollout/episodes)."""
        if self._episodes is None:
            self._episodes = episode_events(self.bag)
        steps, envs = self._episodes
        first = self._step_of(0) if self._has_state else 0
        return np.unique(np.concatenate([[first], steps[envs == env_id] + 1]))

    def seek_episode(self, env_id: int, direction: int) -> int | None:
        """Seek to the start of the next (direction > 0) or previous (< 0) episode of `env_id`.

        "Previous" from inside an episode is that episode's own start, as a media player's
        back button does. Returns the step now at the playhead, or None (nothing changed) when
        there is no such episode in the recording.
        """
        if not self._has_state or direction == 0 or env_id < 0:
            return None
        starts = self.episode_starts(int(env_id))
        current = self.status().step
        if direction > 0:
            later = starts[starts > current]
            target = int(later[0]) if later.size else None
        else:
            earlier = starts[starts < current]
            target = int(earlier[-1]) if earlier.size else None
        return None if target is None else self.seek_step(target)

    # -- playing

    def _take(self, stop: int, limit: int | None = None) -> list[Item]:
        """Play merged positions [playhead, stop), at most `limit` messages of them."""
        out: list[Item] = []
        pos = self._p
        while pos < stop and (limit is None or len(out) < limit):
            if pos in self._skip:
                self._skip.discard(pos)
            else:
                out.append(self._item(pos))
            pos += 1
        if pos > self._p:
            self._shown = max(self._shown, int(self._t[pos - 1]))
        self._p = pos
        return out

    def _at_end(self) -> None:
        if self._p < self._n or self._finished:
            return
        if self._loop:
            self._wrap()
        else:
            self._finished = True
            self._shown = self._t1
            self._changed()

    def _wrap(self) -> None:
        self._seek_to(self._start, int(self._t[self._start]))

    def due(self, now: int | None = None, *, limit: int = 256) -> list[Item]:
        """What to publish now: latched topics queued by a seek, then the messages whose time
        has come (at rate 0: the next `limit` messages). At most `limit` playhead messages."""
        out, self._pending = self._pending, []
        if self._paused or self._finished:
            return out
        now = self._now(now)
        stop = self._n if self._rate == 0 else int(np.searchsorted(self._t, self._bag_clock(now), "right"))
        if stop > self._p:
            out += self._take(stop, limit)
        self._at_end()
        if self._finished or not out:
            return out
        out += self._pending  # a loop wrap queued the latched topics again
        self._pending = []
        return out

    def wait_ns(self, now: int | None = None) -> int | None:
        """Clock ns until the next message is due (0: now), or None while nothing will come
        without a call (paused with nothing queued, or finished)."""
        if self._pending:
            return 0
        if self._paused or self._finished:
            return None
        if self._rate == 0 or self._p >= self._n:
            return 0
        gap = int(self._t[self._p]) - self._bag_clock(self._now(now))
        return max(int(gap / self._rate), 0)

    def play_next(self) -> Item | None:
        """While paused: the next message (the playhead moves past it). None when playing, or
        at the end with loop off."""
        if not self._paused:
            return None
        items = self.burst(1)
        return items[0] if items else None

    def burst(self, n: int) -> list[Item]:
        """While paused: the next `n` messages at once (fewer at the end with loop off; with
        loop on, it wraps around). Empty when playing. Latched topics queued by a seek are
        not counted; collect them with `due()`."""
        if not self._paused or n <= 0:
            return []
        out: list[Item] = []
        while len(out) < n:
            if self._p >= self._n:
                if not self._loop:
                    break
                self._wrap()
            out += self._take(self._n, n - len(out))
        self._at_end()
        if out:
            self._changed()
        return out

    def play(self, publish: Callable[[Item], object], *, sleep: Callable[[float], object] = time.sleep) -> None:
        """Play to the end (forever with loop on), calling `publish` for each message: for
        scripts and offline consumers. A paused player is resumed first."""
        self.resume()
        while not self._finished:
            for item in self.due():
                publish(item)
            wait = self.wait_ns()
            if wait:
                sleep(min(wait, 100_000_000) / 1e9)

    # -- where we are

    def status(self) -> PlayerStatus:
        shown = self._shown
        i = self._state_index(shown) if self._has_state else -1
        span = self._t1 - self._t0
        progress = 1.0 if self._finished else (0.0 if span == 0 else (shown - self._t0) / span)
        return PlayerStatus(
            bag_time=int(shown),
            step=self._step_of(i) if i >= 0 else 0,
            first_step=self._step_of(0) if self._has_state else 0,
            last_step=self._step_of(self._state_t.size - 1) if self._has_state else 0,
            paused=self._paused,
            loop=self._loop,
            rate=self._rate,
            progress=min(max(progress, 0.0), 1.0),
            finished=self._finished,
        )

    @property
    def position(self) -> int:
        """Merged index of the next message to play (0..message_count)."""
        return self._p

    @property
    def message_count(self) -> int:
        """Messages selected for playing."""
        return self._n

    @property
    def start_time(self) -> int:
        return self._t0

    @property
    def end_time(self) -> int:
        return self._t1
