"""An independent reader, `rosbags`, opens our recordings (the rosbag2 folder and a bare .mcap)
and decodes every message of every topic to the values we decode; it computes the same RIHS01
type hashes from the schemas in the bag and parses the QoS profiles rosbag2 needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability, QosLiveliness, QosReliability
from rosbags.rosbag2 import Reader

from rollout.bag import Bag, bag_files
from recordings import record_humanoid

LATCHED = {"/rollout/robot", "/robot_description"}
INFINITE = (9223372036, 854775807)  # rosbag2's "no deadline/lifespan/lease"


@pytest.fixture(scope="module", params=["folder", "file"])
def bag_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bags") / ("run" if request.param == "folder" else "run.mcap")
    return record_humanoid(out, num_envs=3, steps=30, seed=2, compression="zstd", tf_envs=(0, 1))


def plain(value: object) -> object:
    """A rosbags message (dataclasses, numpy arrays, lists) as plain Python data."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "__msgtype__"}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def test_rosbags_decodes_every_message_of_every_topic_as_we_do(bag_path: Path) -> None:
    with Bag(bag_path) as bag, AnyReader([bag_path]) as reader:
        conns = {c.topic: c for c in reader.connections}
        assert set(conns) == set(bag.topics)
        assert {"/tf", "/robot_description", "/rollout/episodes"} <= set(conns)
        for topic, info in bag.topics.items():
            c = conns[topic]
            assert c.msgtype == info.type
            theirs = list(reader.messages([c]))
            assert len(theirs) == info.count > 0, topic
            for i, (_, log_time, data) in enumerate(theirs):
                raw = bag.raw(topic, i)
                assert log_time == raw.log_time and bytes(data) == bytes(raw.data)
                msg = reader.deserialize(data, c.msgtype)
                assert plain(msg) == bag.decode(topic, i).to_dict(), f"{topic}[{i}]"
        # the comparison tells messages apart
        state = conns["/rollout/state"]
        first, second = (reader.deserialize(d, state.msgtype) for _, _, d in list(reader.messages([state]))[:2])
        assert plain(first) != plain(second)


def test_type_hashes_rosbags_computes_from_the_bags_schemas_are_ours(bag_path: Path) -> None:
    with AnyReader([bag_path]) as reader:  # its typestore holds only the types parsed out of the bag
        store = reader.typestore
        theirs = {c.topic: store.hash_rihs01(c.msgtype) for c in reader.connections}
        if bag_path.is_dir():  # metadata.yaml's type_description_hash, which AnyReader also checks
            assert {c.topic: c.digest for c in reader.connections} == theirs
    for f in bag_files(bag_path):
        with open(f, "rb") as stream:
            channels = make_reader(stream).get_summary().channels.values()
        assert {c.topic: c.metadata["topic_type_hash"] for c in channels} == theirs
    with Bag(bag_path) as bag:
        assert {t: info.type_hash for t, info in bag.topics.items()} == theirs
    assert theirs["/robot_description"] == "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"


def test_offered_qos_profiles_parse_to_what_rosbag2_replays(bag_path: Path) -> None:
    # a bare file's profiles come from the channel metadata, a folder's from metadata.yaml
    readers = [Reader(f) for f in bag_files(bag_path)] + ([Reader(bag_path)] if bag_path.is_dir() else [])
    for r in readers:
        with r:
            for c in r.connections:
                (qos,) = c.ext.offered_qos_profiles
                assert c.ext.serialization_format == "cdr"
                assert qos.reliability == QosReliability.RELIABLE, c.topic
                want = QosDurability.TRANSIENT_LOCAL if c.topic in LATCHED else QosDurability.VOLATILE
                assert qos.durability == want, c.topic
                assert qos.liveliness == QosLiveliness.AUTOMATIC
                for t in (qos.deadline, qos.lifespan, qos.liveliness_lease_duration):
                    assert (t.sec, t.nsec) == INFINITE
                assert qos.avoid_ros_namespace_conventions is False
