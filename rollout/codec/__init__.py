"""Messages from `.msg` text: classes, CDR bytes, RIHS01 type hashes and `ros2msg` schemas.

    from rollout.codec import get_type, serialize, deserialize
    State = get_type("rollout_msgs/msg/State")
    data = serialize(State(step=3, obs=np.zeros((16, 348), np.float32)))
    state = deserialize(data, State)          # state.obs is a zero-copy view into data
"""

from __future__ import annotations

from functools import lru_cache

from rollout.codec.cdr import CDR_LE_HEADER, Message, deserialize, serialize
from rollout.codec.typesys import ServiceType, TypeStore


@lru_cache(maxsize=1)
def default_store() -> TypeStore:
    """The process-wide store over the shipped definitions (and a sourced ROS 2 install)."""
    return TypeStore()


def get_type(name: str) -> type[Message]:
    """The message class of `name` ("pkg/msg/Name" or "pkg/Name")."""
    return default_store().get(name)


def get_service(name: str) -> ServiceType:
    """Request/response classes and type hash of service `name` ("pkg/srv/Name")."""
    return default_store().service(name)


def type_hash(name: str) -> str:
    """RIHS01 type hash of a message type."""
    return default_store().type_hash(name)


def schema_text(name: str) -> str:
    """`ros2msg` schema text of a message type, dependencies included, as rosbag2 stores it."""
    return default_store().schema_text(name)


__all__ = [
    "CDR_LE_HEADER",
    "Message",
    "ServiceType",
    "TypeStore",
    "default_store",
    "deserialize",
    "get_service",
    "get_type",
    "schema_text",
    "serialize",
    "type_hash",
]
