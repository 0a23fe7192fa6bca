"""Quality of service, with rclpy's names and ROS's integer values.

Three profiles cover this project: the ROS default (reliable, keep last 10), `LATCHED` (transient
local: a late subscriber gets the last message) and `LOSSLESS` (reliable, keep all, publishers
block instead of dropping) for anything that must not lose data, such as the recorder.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


RMW_ZENOH_DEFAULT_DEPTH = 42  # what an empty depth field means in rmw_zenoh's QoS strings


class ReliabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    RELIABLE = 1
    BEST_EFFORT = 2


class DurabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    TRANSIENT_LOCAL = 1
    VOLATILE = 2


class HistoryPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    KEEP_LAST = 1
    KEEP_ALL = 2


@dataclass(frozen=True)
class QoSProfile:
    """What a publisher offers or a subscriber asks for."""

    depth: int = 10
    reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE
    durability: DurabilityPolicy = DurabilityPolicy.VOLATILE
    history: HistoryPolicy = HistoryPolicy.KEEP_LAST

    @property
    def keep_all(self) -> bool:
        return self.history == HistoryPolicy.KEEP_ALL

    @property
    def latched(self) -> bool:
        return self.durability == DurabilityPolicy.TRANSIENT_LOCAL

    @property
    def reliable(self) -> bool:
        return self.reliability != ReliabilityPolicy.BEST_EFFORT

    def with_depth(self, depth: int) -> "QoSProfile":
        return replace(self, depth=depth)

    def rmw_zenoh_string(self) -> str:
        """The QoS field of rmw_zenoh liveliness tokens: defaults are left empty.

        `reliability:durability:history,depth:deadline_s,ns:lifespan_s,ns:liveliness,lease_s,lease_ns`
        """
        rel = "" if self.reliability == ReliabilityPolicy.RELIABLE else str(int(self.reliability))
        dur = "" if self.durability == DurabilityPolicy.VOLATILE else str(int(self.durability))
        hist = "" if self.history == HistoryPolicy.KEEP_LAST else str(int(self.history))
        depth = "" if self.keep_all else str(self.depth)
        return f"{rel}:{dur}:{hist},{depth}:,:,:,,"

    @classmethod
    def from_rmw_zenoh_string(cls, text: str) -> "QoSProfile":
        try:
            rel, dur, rest = text.split(":", 2)
            hist, depth = rest.split(":", 1)[0].split(",")
            return cls(
                depth=int(depth) if depth else 0 if hist == "2" else RMW_ZENOH_DEFAULT_DEPTH,
                reliability=ReliabilityPolicy(int(rel)) if rel else ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy(int(dur)) if dur else DurabilityPolicy.VOLATILE,
                history=HistoryPolicy(int(hist)) if hist else HistoryPolicy.KEEP_LAST,
            )
        except ValueError:
            return cls()


qos_profile_default = QoSProfile()
qos_profile_sensor_data = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
LOSSLESS = QoSProfile(depth=0, history=HistoryPolicy.KEEP_ALL)


def as_qos(qos: QoSProfile | int) -> QoSProfile:
    """rclpy accepts a bare depth where a profile is expected; so do we."""
    return QoSProfile(depth=qos) if isinstance(qos, int) else qos
