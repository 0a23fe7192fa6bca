"""Bags we write read back the same through our reader, the `mcap` library and `rosbags`,
with the layout rosbag2's MCAP storage plugin writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from rosbags.highlevel import AnyReader

from rollout.bag import Bag, BagWriter, offered_qos_yaml
from rollout.bag.mcapfile import McapFile
from rollout.codec import deserialize, get_type, schema_text, serialize, type_hash
from rollout.errors import BagError

State = get_type("rollout_msgs/msg/State")
Robot = get_type("rollout_msgs/msg/RobotDescription")
T0 = 1_750_000_000_000_000_000


def state(step: int, n: int = 3, obs_dim: int = 7) -> bytes:
    obs = np.arange(n * obs_dim, dtype=np.float32).reshape(n, obs_dim) + step
    return serialize(State(step=step, sim_time=step * 0.02, num_envs=n, obs_dim=obs_dim, obs=obs, done=np.zeros(n, bool)))


def write_bag(path: Path, *, steps: int = 40, **kwargs) -> list[bytes]:
    data = [state(s) for s in range(steps)]
    with BagWriter(path, **kwargs) as bag:
        bag.add_topic("/rollout/robot", "rollout_msgs/msg/RobotDescription", latched=True)
        bag.add_topic("/rollout/state", "rollout_msgs/msg/State")
        bag.write("/rollout/robot", serialize(Robot(num_envs=3, model="<mujoco/>")), T0 - 5)
        for s, d in enumerate(data):
            bag.write("/rollout/state", d, T0 + s * 20_000_000, publish_time=T0 + s * 20_000_000 - 7, sequence=s + 1)
    return data


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_three_readers_agree_on_every_message(tmp_path: Path, compression: str) -> None:
    bag_path = tmp_path / "run"
    data = write_bag(bag_path, compression=compression, chunk_size=4096)
    mcap_file = bag_path / "run_0.mcap"

    with Bag(bag_path) as bag:
        assert [bytes(bag.raw("/rollout/state", i).data) for i in range(40)] == data
        assert bag.decode("/rollout/robot", 0).model == "<mujoco/>"
        m = bag.raw("/rollout/state", 3)
        assert (m.log_time, m.publish_time, m.sequence) == (T0 + 60_000_000, T0 + 60_000_000 - 7, 4)

    with open(mcap_file, "rb") as f:
        reader = make_reader(f)
        got = [(c.topic, msg.log_time, msg.sequence, bytes(msg.data)) for _, c, msg in reader.iter_messages(log_time_order=True)]
        summary = reader.get_summary()
    assert [g[3] for g in got if g[0] == "/rollout/state"] == data
    assert summary.statistics.message_count == 41
    assert summary.statistics.chunk_count == len(summary.chunk_indexes) > 1
    if compression != "none":
        assert {ci.compression for ci in summary.chunk_indexes} == {compression}

    with AnyReader([bag_path]) as reader:
        conns = {c.topic: c for c in reader.connections}
        assert conns["/rollout/state"].msgcount == 40
        steps = [reader.deserialize(raw, c.msgtype).step for c, _, raw in reader.messages([conns["/rollout/state"]])]
        assert steps == list(range(40))
        ours = deserialize(data[5], State)
        theirs = next(reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages([conns["/rollout/state"]]) if reader.deserialize(raw, c.msgtype).step == 5)  # noqa: E501
        assert np.array_equal(theirs.obs, ours.obs)


def test_layout_is_rosbag2s(tmp_path: Path) -> None:
    write_bag(tmp_path / "run")
    with open(tmp_path / "run" / "run_0.mcap", "rb") as f:
        reader = make_reader(f)
        header = reader.get_header()
        summary = reader.get_summary()
    assert header.profile == "ros2"
    schemas = {s.name: s for s in summary.schemas.values()}
    assert schemas["rollout_msgs/msg/State"].encoding == "ros2msg"
    assert schemas["rollout_msgs/msg/State"].data.decode() == schema_text("rollout_msgs/msg/State")
    assert "\nMSG: std_msgs/Header\n" in schemas["rollout_msgs/msg/State"].data.decode()
    channels = {c.topic: c for c in summary.channels.values()}
    for topic, msg_type in (("/rollout/state", "rollout_msgs/msg/State"), ("/rollout/robot", "rollout_msgs/msg/RobotDescription")):
        c = channels[topic]
        assert c.message_encoding == "cdr"
        assert c.metadata["topic_type_hash"] == type_hash(msg_type)
        qos = yaml.safe_load(c.metadata["offered_qos_profiles"])
        assert qos[0]["reliability"] == 1 and qos[0]["history"] == 3
        assert qos[0]["durability"] == (1 if topic == "/rollout/robot" else 2)  # transient local / volatile
        assert qos[0]["deadline"] == {"sec": 9223372036, "nsec": 854775807}
    # every chunk has a message index for each channel in it
    assert all(ci.message_index_offsets for ci in summary.chunk_indexes)


def test_metadata_yaml_describes_the_folder(tmp_path: Path) -> None:
    write_bag(tmp_path / "run")
    meta = yaml.safe_load((tmp_path / "run" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 8 and meta["storage_identifier"] == "mcap"
    assert meta["relative_file_paths"] == ["run_0.mcap"]
    assert meta["message_count"] == 41
    assert meta["starting_time"]["nanoseconds_since_epoch"] == T0 - 5
    assert meta["duration"]["nanoseconds"] == 39 * 20_000_000 + 5
    topics = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    assert topics["/rollout/state"]["message_count"] == 40
    assert topics["/rollout/state"]["topic_metadata"]["offered_qos_profiles"] == offered_qos_yaml()
    assert meta["files"][0] == {
        "path": "run_0.mcap",
        "starting_time": {"nanoseconds_since_epoch": T0 - 5},
        "duration": {"nanoseconds": 39 * 20_000_000 + 5},
        "message_count": 41,
    }


def test_big_message_gets_its_own_chunk(tmp_path: Path) -> None:
    path = tmp_path / "big.mcap"
    big = state(0, n=64, obs_dim=348)  # ~89 KB > chunk size
    with BagWriter(path, chunk_size=16 * 1024) as bag:
        bag.add_topic("/rollout/state", "rollout_msgs/msg/State")
        bag.add_topic("/small", "std_msgs/msg/String")
        String = get_type("std_msgs/msg/String")
        bag.write("/small", serialize(String(data="a")), T0)
        bag.write("/rollout/state", big, T0 + 1)
        bag.write("/small", serialize(String(data="b")), T0 + 2)
    f = McapFile(path)
    try:
        sizes = [c.uncompressed_size for c in f.chunks]
        assert len(f.chunks) == 3  # small, big alone, small
        # the first small chunk also carries the schema and channel records
        assert len(big) < sizes[1] < len(big) + 100 and sizes[0] < 5000 and sizes[2] < 1000
    finally:
        f.close()
    with Bag(path) as bag:
        assert bytes(bag.raw("/rollout/state", 0).data) == big


def test_split_by_size_and_duration(tmp_path: Path) -> None:
    data = write_bag(tmp_path / "by_size", split_size=2048, chunk_size=1024)
    with Bag(tmp_path / "by_size") as bag:
        assert len(bag.files) > 2
        assert [bytes(bag.raw("/rollout/state", i).data) for i in range(40)] == data
    meta = yaml.safe_load((tmp_path / "by_size" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["relative_file_paths"] == [f"by_size_{k}.mcap" for k in range(len(meta["files"]))]
    assert sum(f["message_count"] for f in meta["files"]) == 41

    write_bag(tmp_path / "by_time", split_duration=0.2)  # a message every 20 ms: 10 per file
    with Bag(tmp_path / "by_time") as bag:
        assert len(bag.files) == 4
        assert bag.topics["/rollout/state"].count == 40
    with AnyReader([tmp_path / "by_time"]) as reader:
        assert sum(1 for _ in reader.messages()) == 41


def test_close_twice_and_write_after_close(tmp_path: Path) -> None:
    bag = BagWriter(tmp_path / "a.mcap")
    bag.add_topic("/rollout/state", "rollout_msgs/msg/State")
    assert bag.close() == tmp_path / "a.mcap"
    assert bag.close() == tmp_path / "a.mcap"
    with pytest.raises(BagError, match="already closed"):
        bag.write("/rollout/state", state(0), T0)
    with Bag(tmp_path / "a.mcap") as b:
        assert b.topics["/rollout/state"].count == 0


def test_writer_rejects_mistakes_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    with pytest.raises(BagError, match="already exists"):
        BagWriter(tmp_path / "taken")
    with pytest.raises(BagError, match="cannot be split"):
        BagWriter(tmp_path / "b.mcap", split_size=10**6)
    with BagWriter(tmp_path / "ok") as bag:
        with pytest.raises(BagError, match="digit"):
            bag.add_topic("/rollout/2d", "std_msgs/msg/String")
        with pytest.raises(BagError, match="add_topic first"):
            bag.write("/nope", b"\x00\x01\x00\x00", T0)
        bag.add_topic("/t", "std_msgs/String")
        with pytest.raises(BagError, match="was added as"):
            bag.add_topic("/t", "rollout_msgs/msg/State")
    for e in (BagError("x"),):
        assert "\n" not in str(e)


def test_bare_file_reads_without_metadata(tmp_path: Path) -> None:
    data = write_bag(tmp_path / "one.mcap", compression="zstd")
    assert not (tmp_path / "metadata.yaml").exists()
    with AnyReader([tmp_path / "one.mcap"]) as reader:
        assert sum(1 for c in reader.connections if c.topic == "/rollout/state") == 1
    with Bag(tmp_path / "one.mcap") as bag:
        assert bag.read_arrays("/rollout/state", ["step"])["step"].tolist() == list(range(40))
        assert bytes(bag.raw("/rollout/state", -1).data) == data[-1]


def test_qos_yaml_is_the_integer_form(tmp_path: Path) -> None:
    text = offered_qos_yaml(latched=True)
    assert json.dumps(yaml.safe_load(text)[0]["durability"]) == "1"
    assert text.startswith("- history: 3\n  depth: 0\n  reliability: 1\n  durability: 1\n")
    assert not text.endswith("\n")
