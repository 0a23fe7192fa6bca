"""A single-threaded executor: every callback of a process runs one at a time on the spinning thread.

Zenoh delivers samples on its own threads; they only append to a subscription's queue and
schedule it here, so user code never runs concurrently with itself (rclpy's default executor).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable


class Executor:
    def __init__(self) -> None:
        self._ready: deque[Callable[[], None]] = deque()
        self._cv = threading.Condition(threading.RLock())  # re-entrant: signal handlers call stop()
        self._timers: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self.stopped = False

    def post(self, work: Callable[[], None]) -> None:
        with self._cv:
            self._ready.append(work)
            self._cv.notify()

    def add_timer(self, timer: Timer) -> None:
        with self._cv:
            heapq.heappush(self._timers, (timer.next_call, next(self._order), timer))
            self._cv.notify()

    def stop(self) -> None:
        self.stopped = True
        with self._cv:
            self._cv.notify_all()

    def _due_timer(self, now: float) -> Timer | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        if self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            timer.next_call = max(timer.next_call + timer.period, now)  # no catch-up bursts
            heapq.heappush(self._timers, (timer.next_call, next(self._order), timer))
            return timer
        return None

    def spin_once(self, timeout: float | None = None) -> bool:
        """Run one ready callback or due timer, waiting up to `timeout` seconds; True if one ran."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while not self.stopped:
                now = time.monotonic()
                timer = self._due_timer(now)
                if timer is not None:
                    work: Callable[[], None] = timer.callback
                    break
                if self._ready:
                    work = self._ready.popleft()
                    break
                wait = 0.1  # bounded, so a stop() from a signal handler is seen promptly
                if self._timers:
                    wait = min(wait, self._timers[0][0] - now)
                if deadline is not None:
                    if now >= deadline:
                        return False
                    wait = min(wait, deadline - now)
                self._cv.wait(max(wait, 0.0))
            else:
                return False
        work()
        return True

    def spin(self) -> None:
        while not self.stopped:
            self.spin_once(0.1)


class Timer:
    """Calls `callback` every `period` seconds on the spinning thread (rclpy's Timer)."""

    def __init__(self, executor: Executor, period: float, callback: Callable[[], None]) -> None:
        if period <= 0:
            raise ValueError(f"timer period must be positive, got {period}")
        self.period = period
        self.callback = callback
        self.cancelled = False
        self.next_call = time.monotonic() + period
        executor.add_timer(self)

    def cancel(self) -> None:
        self.cancelled = True

    def is_canceled(self) -> bool:
        return self.cancelled


KEEP_ALL_ITEMS = 64
RUN_BATCH = 16  # items one executor turn handles before timers and other callbacks get theirs
KEEP_ALL_BYTES = 64 << 20  # so a slow taker of 8 MB messages holds ~8 of them, not 64 (0.5 GB)


class Mailbox:
    """A subscription's incoming queue: keep-last drops the oldest; keep-all makes the sender wait
    once it holds KEEP_ALL_ITEMS messages or KEEP_ALL_BYTES bytes (always room for one).

    Scheduled on the executor at most once at a time, so a slow consumer never piles up work.
    """

    def __init__(self, executor: Executor, handle: Callable[[object], None], *, depth: int, keep_all: bool) -> None:
        self._executor = executor
        self._handle = handle
        self._keep_all = keep_all
        self._capacity = max(depth, 1) if not keep_all else KEEP_ALL_ITEMS
        self._items: deque[tuple[object, int]] = deque(maxlen=None if keep_all else self._capacity)
        self._bytes = 0  # queued bytes (keep-all only)
        self._cv = threading.Condition()
        self._scheduled = False
        self._closed = False
        self.dropped = 0

    def close(self) -> None:
        """Take nothing more (the subscription is gone); a waiting `put` returns."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def put(self, item: object, size: int = 0) -> None:
        """Called on a transport thread; `size`: the item's bytes, for keep-all's byte bound."""
        self.put_many([item], [size])

    def put_many(self, items: list[object], sizes: list[int]) -> None:
        """Queue several items in one hand-off (one lock, at most one wake-up of the executor)."""
        schedule = False
        with self._cv:
            for item, size in zip(items, sizes):
                if self._keep_all:
                    # back-pressure: holding the transport thread makes a BLOCK publisher wait
                    if self._full(size) and not self._scheduled:
                        self._scheduled = schedule = True  # let the executor start on what is queued
                        self._executor.post(self._run)
                    while self._full(size) and not self._executor.stopped and not self._closed:
                        self._cv.wait(0.1)
                    self._bytes += size
                if self._closed:
                    return
                elif len(self._items) == self._capacity:
                    self.dropped += 1
                self._items.append((item, size))
            if not self._scheduled:
                self._scheduled = schedule = True
                self._executor.post(self._run)

    def _full(self, size: int) -> bool:
        return bool(self._items) and (len(self._items) >= self._capacity or self._bytes + size > KEEP_ALL_BYTES)

    def _run(self) -> None:
        """Handle what is queued now (up to RUN_BATCH items), then give other callbacks a turn."""
        for _ in range(RUN_BATCH):
            with self._cv:
                if not self._items:
                    self._scheduled = False
                    return
                item, size = self._items.popleft()
                if self._keep_all:
                    self._bytes -= size
                self._cv.notify_all()
            self._handle(item)
        with self._cv:
            self._scheduled = bool(self._items)
            if self._scheduled:
                self._executor.post(self._run)

    def pending(self) -> int:
        return len(self._items)
