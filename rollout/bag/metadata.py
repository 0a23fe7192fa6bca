"""rosbag2 metadata: the `offered_qos_profiles` string of a channel and a folder's `metadata.yaml`.

Both use the integer form of QoS enums (metadata version 8), which every ROS 2 release from
Humble on reads; see /work/notes/rosbag2_facts.md for where each detail comes from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from rollout.errors import BagError

METADATA_FILE = "metadata.yaml"
METADATA_VERSION = 8

# rmw enum values
HISTORY_KEEP_LAST, HISTORY_KEEP_ALL, HISTORY_UNKNOWN = 1, 2, 3
RELIABLE, BEST_EFFORT = 1, 2
TRANSIENT_LOCAL, VOLATILE = 1, 2
LIVELINESS_AUTOMATIC = 1
_INFINITE = "\n    sec: 9223372036\n    nsec: 854775807"  # RMW_DURATION_INFINITE as yaml-cpp dumps it


def offered_qos_yaml(
    *,
    latched: bool = False,
    reliable: bool = True,
    history: int = HISTORY_UNKNOWN,
    depth: int = 0,
) -> str:
    """One publisher's offered QoS as rosbag2 stores it in channel metadata and metadata.yaml.

    The defaults are what rosbag2 records for a reliable publisher seen over the network
    (history unknown, depth 0); `latched` gives transient-local durability.
    """
    return (
        f"- history: {history}\n"
        f"  depth: {depth}\n"
        f"  reliability: {RELIABLE if reliable else BEST_EFFORT}\n"
        f"  durability: {TRANSIENT_LOCAL if latched else VOLATILE}\n"
        f"  deadline:{_INFINITE}\n"
        f"  lifespan:{_INFINITE}\n"
        f"  liveliness: {LIVELINESS_AUTOMATIC}\n"
        f"  liveliness_lease_duration:{_INFINITE}\n"
        "  avoid_ros_namespace_conventions: false"
    )


def is_latched(qos_yaml: str) -> bool:
    """Whether an offered_qos_profiles string offers transient-local durability (either form)."""
    text = qos_yaml.replace(" ", "")
    return "durability:1\n" in text + "\n" or "durability:transient_local" in text


@dataclass(frozen=True)
class TopicEntry:
    name: str
    type: str
    offered_qos_profiles: str
    type_hash: str
    count: int
    serialization_format: str = "cdr"


@dataclass(frozen=True)
class FileEntry:
    path: str  # file name inside the folder
    start_ns: int
    duration_ns: int
    count: int


def metadata_yaml(topics: list[TopicEntry], files: list[FileEntry], *, custom: dict[str, str] | None = None) -> str:
    """The text of a rosbag2 `metadata.yaml` (version 8) for an MCAP folder bag."""
    start = min((f.start_ns for f in files if f.count), default=0)
    end = max((f.start_ns + f.duration_ns for f in files if f.count), default=0)
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    lines = [
        "rosbag2_bagfile_information:",
        f"  version: {METADATA_VERSION}",
        "  storage_identifier: mcap",
        "  duration:",
        f"    nanoseconds: {end - start}",
        "  starting_time:",
        f"    nanoseconds_since_epoch: {start}",
        f"  message_count: {sum(t.count for t in topics)}",
        "  topics_with_message_count:",
    ]
    for t in topics:
        lines += [
            "    - topic_metadata:",
            f"        name: {t.name}",
            f"        type: {t.type}",
            f"        serialization_format: {t.serialization_format}",
            f"        offered_qos_profiles: {q(t.offered_qos_profiles)}",
            f"        type_description_hash: {q(t.type_hash)}",
            f"      message_count: {t.count}",
        ]
    if not topics:
        lines[-1] += " []"
    lines += ['  compression_format: ""', '  compression_mode: ""', "  relative_file_paths:"]
    lines += [f"    - {q(f.path)}" for f in files]
    lines.append("  files:")
    for f in files:
        lines += [
            f"    - path: {q(f.path)}",
            "      starting_time:",
            f"        nanoseconds_since_epoch: {f.start_ns}",
            "      duration:",
            f"        nanoseconds: {f.duration_ns}",
            f"      message_count: {f.count}",
        ]
    if custom:
        lines.append("  custom_data:")
        lines += [f"    {k}: {q(v)}" for k, v in custom.items()]
    else:
        lines.append("  custom_data: ~")
    lines.append('  ros_distro: ""')
    return "\n".join(lines) + "\n"


def write_metadata(folder: Path, text: str) -> None:
    """Write metadata.yaml atomically (a crash leaves the old one or the new one, never half)."""
    tmp = folder / (METADATA_FILE + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, folder / METADATA_FILE)


def folder_files(folder: Path) -> list[Path]:
    """The MCAP files of a folder bag, in order: from metadata.yaml, else `<name>_<N>.mcap` by N."""
    meta = folder / METADATA_FILE
    if meta.is_file():
        import yaml

        try:
            doc = yaml.safe_load(meta.read_text())
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as e:
            raise BagError(f"{meta} is not a valid rosbag2 metadata file ({type(e).__name__})") from None
        info = doc.get("rosbag2_bagfile_information") if isinstance(doc, dict) else None
        if not isinstance(info, dict):
            raise BagError(f"{meta} is not a valid rosbag2 metadata file: rosbag2_bagfile_information must be a mapping")
        storage = info.get("storage_identifier", "")
        listed = info.get("relative_file_paths")
        if not isinstance(listed, list) or not all(isinstance(p, str) and p for p in listed):
            raise BagError(f"{meta} is not a valid rosbag2 metadata file: relative_file_paths must be a list of file names")
        names = [Path(p).name for p in listed]
        if storage != "mcap":
            raise BagError(f"{folder} is a rosbag2 bag with storage {storage!r}; only mcap bags are supported")
        paths = [folder / n for n in names]
        if missing := [p.name for p in paths if not p.is_file()]:
            raise BagError(f"{folder}: metadata.yaml lists files that are missing: {', '.join(missing)}")
        return paths
    found = [p for p in folder.glob("*.mcap") if p.is_file()]

    def order(p: Path) -> tuple[int, str]:
        tail = p.stem.rpartition("_")[2]
        return (int(tail) if tail.isdigit() else 1 << 62, p.name)

    return sorted(found, key=order)
