"""Recorder node: every message of the rollout topics, losslessly, into an MCAP bag.

Subscribes (raw CDR, reliable keep-all: publishers wait rather than drop) to each topic as its
publisher appears, and writes the bag as rosbag2's MCAP plugin does. On Ctrl-C/SIGTERM it takes
what is still in flight, closes the bag and prints its path, per-topic counts and any gaps found
in publishers' sequence numbers. A SIGKILL leaves every complete chunk readable
(`rollout bag repair`). A topic that gets messages from a second publisher (another sim in the
same graph) is reported at once and in the summary: the bag then mixes two sources.

    rollout run recorder --ros-args -p out:=rollouts/run1 -p compression:=lz4
"""

from __future__ import annotations

import fnmatch
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rollout import topics
from rollout.bag import BagWriter, offered_qos_yaml
from rollout.errors import BagError, ParameterError
from rollout.progress import Progress, bag_bytes
from rollout.recording import default_bag_path
from rollout.runtime import LOSSLESS, Node, QoSProfile, Subscription, run_node
from rollout.runtime.qos import DurabilityPolicy

DRAIN_QUIET = 0.3  # seconds without a message that mean everything in flight has arrived
DRAIN_MAX = 10.0


@dataclass(frozen=True)
class RecorderParams:
    out: str = ""
    """Bag path: a folder (rosbag2 layout) or a file ending in .mcap (default rollouts/rollout_<time>)."""
    topics: str = ""
    """Topics to record, comma separated, '*' wildcards allowed (default: the rollout topics, under any namespace)."""
    exclude: str = ""
    """Topics not to record, comma separated, '*' wildcards allowed."""
    all: bool = False
    """Record every topic in the graph."""
    compression: str = "none"
    """Chunk compression: none, lz4 or zstd."""
    chunk_size: int = 768 * 1024
    """Bytes per chunk before it is written."""
    split_size: int = 0
    """Start a new file after this many bytes (0: never)."""
    split_duration: float = 0.0
    """Start a new file after this many seconds (0: never)."""
    flush_interval: float = 1.0
    """Seconds between writing out the chunk in progress, so a crash loses at most this much (0: only full chunks)."""
    chunk_crc: bool = True
    """Store a CRC-32 of every chunk, checked on every read (off only to measure what it costs)."""
    expected_steps: int = 0
    """Control steps the sim will publish: the progress line's total and ETA (0: unknown)."""
    progress: float = 1.0
    """Seconds between progress lines (step / total, steps/s, ETA, bag size); 0: none."""


def topic_filter(p: RecorderParams) -> Callable[[str], bool]:
    include = [t.strip() for t in p.topics.split(",") if t.strip()] or (["*"] if p.all else [])
    exclude = [t.strip() for t in p.exclude.split(",") if t.strip()]

    def wanted(name: str) -> bool:
        # by default the rollout topics of every sim: /rollout/state, /rank0/rollout/state, ...
        included = any(fnmatch.fnmatchcase(name, pat) for pat in include) if include else topics.split_namespace(name) is not None
        return included and not any(fnmatch.fnmatchcase(name, pat) for pat in exclude)

    return wanted


class GapCounter:
    """Messages missing between consecutive sequence numbers of each publisher, as exact ranges."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, bytes], int] = {}
        self.ranges: dict[str, list[tuple[int, int]]] = {}  # topic -> [(first, last) missing sequence numbers]

    def see(self, topic: str, gid: bytes, seq: int) -> tuple[int, int] | None:
        """Note a message; returns the range of sequence numbers it shows missing, if any."""
        if not seq:
            return None
        last = self._last.get((topic, gid))
        self._last[(topic, gid)] = seq
        if last is not None and seq > last + 1:
            gap = (last + 1, seq - 1)
            self.ranges.setdefault(topic, []).append(gap)
            return gap
        return None

    @property
    def missing(self) -> dict[str, int]:
        """topic -> messages missing."""
        return {t: sum(b - a + 1 for a, b in r) for t, r in self.ranges.items()}

    def describe(self, topic: str) -> str:
        spans = [f"{a}" if a == b else f"{a}-{b}" for a, b in self.ranges[topic]]
        shown = ", ".join(spans[:8]) + (f", ... ({len(spans)} gaps)" if len(spans) > 8 else "")
        return f"{topic} is missing {self.missing[topic]} messages (sequence numbers {shown})"


class SourceCheck:
    """The publishers each topic's messages came from; says when a second one appears."""

    def __init__(self) -> None:
        self._seen: dict[str, set[bytes]] = {}

    def see(self, topic: str, gid: bytes) -> bool:
        """True when this message is the first on `topic` from a publisher other than the first."""
        seen = self._seen.setdefault(topic, set())
        if gid in seen or not gid:
            return False
        seen.add(gid)
        return len(seen) == 2

    @property
    def mixed(self) -> dict[str, int]:
        """topic -> number of publishers, for topics with more than one."""
        return {t: len(g) for t, g in self._seen.items() if len(g) > 1}


class Recorder(Node):
    def __init__(self, args: list[str] | None = None) -> None:
        super().__init__("recorder", params=RecorderParams, cli_args=args)
        p: RecorderParams = self.params
        if p.compression not in ("none", "lz4", "zstd"):
            raise ParameterError(f"compression must be none, lz4 or zstd, not {p.compression!r}")
        self.path = Path(p.out) if p.out else default_bag_path()
        try:
            self.bag = BagWriter(
                self.path,
                compression=p.compression,  # type: ignore[arg-type]
                chunk_size=p.chunk_size,
                split_size=p.split_size,
                split_duration=p.split_duration,
                chunk_crc=p.chunk_crc,
            )
        except OSError as e:
            raise BagError(f"cannot write the bag at {self.path}: {e.strerror or e}") from None
        self.wanted = topic_filter(p)
        self.subs: dict[str, Subscription] = {}
        self.gaps = GapCounter()
        self.sources = SourceCheck()
        self.last_message = time.monotonic()
        self.steps = 0
        self.progress = (
            Progress(p.expected_steps, stream=sys.stdout, interval=p.progress, size=lambda: bag_bytes(self.path))
            if p.progress > 0
            else None
        )
        self.create_timer(0.05, self.discover)
        if p.flush_interval > 0:
            self.create_timer(p.flush_interval, self.bag.flush)
        self.discover()
        self.get_logger().info(f"recording to {self.path}")

    def discover(self) -> None:
        """Subscribe to each wanted topic once a publisher offers it, with that publisher's durability."""
        for e in self.publishers():
            if e.topic in self.subs or not self.wanted(e.topic) or e.node.rsplit("/", 1)[-1].startswith("_"):
                continue
            qos = LOSSLESS
            if e.qos.latched:
                qos = QoSProfile(depth=max(e.qos.depth, 1), durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.bag.add_topic(
                e.topic,
                e.type_name,
                qos=offered_qos_yaml(latched=e.qos.latched, reliable=e.qos.reliable),
                type_hash=e.type_hash,
            )
            self.subs[e.topic] = self.create_subscription(
                e.type_name, e.topic, lambda data, info, topic=e.topic: self.write(topic, data, info), qos, raw=True
            )
            self.get_logger().info(f"recording {e.topic} [{e.type_name}]")

    def write(self, topic: str, data: bytes, info: dict) -> None:
        self.bag.write(
            topic,
            data,
            info["received_timestamp"],
            publish_time=info["source_timestamp"] or info["received_timestamp"],
            sequence=info["publication_sequence_number"],
        )
        gap = self.gaps.see(topic, info["publisher_gid"], info["publication_sequence_number"])
        if gap is not None:
            n = gap[1] - gap[0] + 1
            self.get_logger().warning(f"{topic}: {n} messages never arrived (sequence numbers {gap[0]}-{gap[1]})")
        if self.sources.see(topic, info["publisher_gid"]):
            others = sorted({e.node for e in self.publishers() if e.topic == topic})
            self.get_logger().warning(
                f"a second publisher sends on {topic} ({', '.join(others) or 'unknown node'}): this bag now mixes "
                "two sources; record each run in its own graph (every `rollout launch` hosts one), or give each sim "
                "its own namespace (namespace:=rank0)"
            )
        self.last_message = time.monotonic()
        if topic == topics.STATE:
            self.steps += 1
            if self.progress is not None:
                self.progress.update(self.steps)

    def in_flight(self) -> bool:
        """Messages still queued, or the topics not yet quiet for a moment."""
        return any(sub.pending() for sub in self.subs.values()) or time.monotonic() - self.last_message < DRAIN_QUIET

    def destroy_node(self) -> None:
        time_left = getattr(self.context, "stop_time_left", None)  # seconds before an orphan must be gone
        left = time_left() if time_left is not None else None
        # take what is still in flight; an orphaned recorder (its launcher died) keeps time to close the bag
        self.spin_while(self.in_flight, DRAIN_MAX if left is None else max(0.0, left - 0.6))
        path = self.bag.close()
        if self.progress is not None:
            self.progress.finish()
        counts = self.bag.counts
        super().destroy_node()
        if not any(counts.values()):  # nothing arrived (e.g. the sim failed at start): leave no empty bag
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            print(f"no messages arrived; no bag written at {path}", flush=True)
            return
        lines = [f"bag: {path}"]
        lines += [f"  {topic}: {n} messages" for topic, n in counts.items()]
        if self.gaps.missing:
            lines += [f"  gap: {self.gaps.describe(topic)}" for topic in self.gaps.ranges]
        else:
            lines.append("  no gaps")
        lines += [f"  mixed: {topic} came from {n} publishers" for topic, n in self.sources.mixed.items()]
        print("\n".join(lines), flush=True)


def main(args: list[str] | None = None) -> None:
    run_node(Recorder, args)


if __name__ == "__main__":
    main()
