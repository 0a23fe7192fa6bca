"""ROS names as rmw_zenoh writes them: data keys, liveliness tokens and the GIDs they carry.

A ROS 2 system running `RMW_IMPLEMENTATION=rmw_zenoh_cpp` finds our nodes, publishers,
subscriptions and services through these liveliness tokens and talks to us on these keys:

    data key  <domain>/<topic without outer '/'>/<pkg>::msg::dds_::<Name>_/<RIHS01 hash>
    token     @ros2_lv/<domain>/<zid>/<nid>/<eid>/<KIND>/<enclave>/<ns>/<node>[/<topic>/<type>/<hash>/<qos>]

where KIND is NN (node), MP/MS (publisher/subscription), SS/SC (service/client) and every '/'
inside a field is written '%'.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

from rollout.errors import ParameterError

ADMIN_SPACE = "@ros2_lv"
KINDS = ("NN", "MP", "MS", "SS", "SC")
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def domain_id() -> int:
    """`ROS_DOMAIN_ID`, as ROS 2 reads it (0 when unset)."""
    text = os.environ.get("ROS_DOMAIN_ID", "").strip()
    if not text:
        return 0
    if not text.isdigit() or int(text) > 232:
        raise ParameterError(f"ROS_DOMAIN_ID must be an integer 0..232, got {text!r}")
    return int(text)


def mangle(name: str) -> str:
    """A name as one key-expression chunk: '/' becomes '%'; the empty name is '%'."""
    return name.replace("/", "%") or "%"


def unmangle(chunk: str) -> str:
    return "" if chunk == "%" else chunk.replace("%", "/")


def dds_type_name(type_name: str) -> str:
    """`pkg/msg/Name` -> `pkg::msg::dds_::Name_` (the type string rmw_zenoh puts in keys)."""
    pkg, kind, name = type_name.split("/")
    return f"{pkg}::{kind}::dds_::{name}_"


def ros_type_name(dds_name: str) -> str:
    """`pkg::msg::dds_::Name_` -> `pkg/msg/Name`."""
    parts = dds_name.split("::")
    if len(parts) == 4 and parts[2] == "dds_" and parts[3].endswith("_"):
        return f"{parts[0]}/{parts[1]}/{parts[3][:-1]}"
    return dds_name


def validate_name(name: str, what: str = "topic") -> str:
    """An absolute ROS name, or a `ParameterError` saying what is wrong with it."""
    if not name.startswith("/") or name == "/" or name.endswith("/") or "//" in name:
        raise ParameterError(f"invalid {what} name {name!r}")
    for token in name[1:].split("/"):
        if not _TOKEN.match(token):
            raise ParameterError(
                f"invalid {what} name {name!r}: each part must be letters, digits and '_', not starting with a digit"
            )
    return name


def resolve_name(name: str, namespace: str, node: str, remaps: dict[str, str] | None = None) -> str:
    """Expand a relative or private (`~/x`) name as rcl does, then apply remappings."""
    if name.startswith("~"):
        full = f"{namespace.rstrip('/')}/{node}{name[1:]}"
    elif name.startswith("/"):
        full = name
    else:
        full = f"{namespace.rstrip('/')}/{name}"
    if remaps:
        full = remaps.get(full, remaps.get(name, full))
    return full if full.startswith("/") else "/" + full


def data_key(domain: int, name: str, type_name: str, type_hash: str) -> str:
    return f"{domain}/{name.strip('/')}/{dds_type_name(type_name)}/{type_hash}"


def token_key(
    domain: int,
    zid: str,
    nid: int,
    eid: int,
    kind: str,
    namespace: str,
    node: str,
    *,
    name: str = "",
    type_name: str = "",
    type_hash: str = "",
    qos: str = "",
) -> str:
    key = f"{ADMIN_SPACE}/{domain}/{zid}/{nid}/{eid}/{kind}/%/{mangle(namespace if namespace != '/' else '')}/{node}"
    if kind != "NN":
        key += f"/{mangle(name)}/{dds_type_name(type_name)}/{type_hash}/{qos}"
    return key


def gid_of(token: str) -> bytes:
    """A 16-byte GID for an entity, stable for its token (rmw_zenoh hashes the token too)."""
    return hashlib.blake2b(token.encode(), digest_size=16).digest()


@dataclass(frozen=True)
class Entity:
    """One liveliness token of the ROS graph, parsed."""

    kind: str
    zid: str
    nid: str
    eid: str
    namespace: str
    node: str
    name: str = ""
    type_name: str = ""
    type_hash: str = ""
    qos: str = ""

    @property
    def node_fqn(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.node}"


def parse_token(key: str) -> Entity | None:
    """The entity a liveliness token names, or None for anything else."""
    parts = str(key).split("/")
    if len(parts) < 9 or parts[0] != ADMIN_SPACE or parts[5] not in KINDS:
        return None
    _, _, zid, nid, eid, kind, _enclave, ns, node, *rest = parts
    namespace = unmangle(ns) or "/"
    if kind == "NN":
        return Entity(kind, zid, nid, eid, namespace, node)
    if len(rest) < 4:
        return None
    name, dds_type, type_hash, qos = rest[0], rest[1], rest[2], "/".join(rest[3:])
    return Entity(kind, zid, nid, eid, namespace, node, unmangle(name), ros_type_name(dds_type), type_hash, qos)
