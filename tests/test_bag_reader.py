"""The reader: topics and counts, stacked arrays, seeking by time and step, and a clear one-line
error (never a hang) for files that are not healthy rollout bags."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from rollout.bag import Bag, BagWriter, info
from rollout.codec import get_type, serialize
from rollout.errors import BagError
from rollout.export.synthetic import CORE_TOPICS, T0, write_synthetic_rollout


@pytest.fixture(scope="module")
def rollout_bag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("bags") / "run"
    rec = write_synthetic_rollout(
        path, steps=50, num_envs=5, obs_dim=9, chunk_size=3000, compression="lz4", first_step=100, topics=CORE_TOPICS
    )
    return path, rec


def test_topics_types_and_counts(rollout_bag: tuple[Path, object]) -> None:
    path, _ = rollout_bag
    with Bag(path) as bag:
        topics = bag.topics
        assert list(topics) == ["/rollout/robot", "/rollout/state", "/rollout/action", "/rollout/reward_terms"]
        assert topics["/rollout/state"].type == "rollout_msgs/msg/State"
        assert [t.count for t in topics.values()] == [1, 50, 50, 50]
        assert topics["/rollout/robot"].latched and not topics["/rollout/state"].latched
        assert bag.message_count == 151
        assert bag.start_time == T0 - 1000
    text = info(path)
    for line in ("Files:             run_0.mcap", "Storage id:        mcap", "Messages:          151",
                 "Topic information: Topic: /rollout/robot | Type: rollout_msgs/msg/RobotDescription | Count: 1 | Serialization Format: cdr",  # noqa: E501
                 "                   Topic: /rollout/state | Type: rollout_msgs/msg/State | Count: 50 | Serialization Format: cdr"):  # noqa: E501
        assert line in text.splitlines()
    assert "Duration:          0.735003000s" in text


def test_read_arrays_stacks_a_topic_over_time(rollout_bag: tuple[Path, object]) -> None:
    path, rec = rollout_bag
    with Bag(path) as bag:
        a = bag.read_arrays("/rollout/state", ["obs", "step", "sim_time", "done"])
        assert a["obs"].shape == (50, 45) and a["obs"].dtype == np.float32
        assert np.array_equal(a["obs"].reshape(50, 5, 9), rec.obs)
        assert a["step"].dtype == np.uint64 and a["step"].tolist() == list(range(100, 150))
        assert np.array_equal(a["done"], rec.done)
        cols = np.array([2, 3, 4])
        part = bag.read_arrays("/rollout/state", ["obs"], indices=[4, 7], take={"obs": cols})
        assert np.array_equal(part["obs"], rec.obs[[4, 7], 0, 2:5])
        window = bag.read_arrays("/rollout/action", ["action"], start_time=int(rec.log_times[10]), end_time=int(rec.log_times[20]))
        assert np.array_equal(window["action"].reshape(-1, 5, 3), rec.act[10:20])
        with pytest.raises(BagError, match="no field 'nope'"):
            bag.read_arrays("/rollout/state", ["nope"])
        with pytest.raises(BagError, match="not a number or array"):
            bag.read_arrays("/rollout/reward_terms", ["terms"])


def test_seek_by_time_and_step_reads_only_that_topic(rollout_bag: tuple[Path, object]) -> None:
    path, rec = rollout_bag
    with Bag(path) as bag:
        assert bag.seek_time("/rollout/state", int(rec.log_times[17])) == 17
        assert bag.seek_time("/rollout/state", int(rec.log_times[17]) + 1) == 18
        assert bag.seek_step("/rollout/state", 133) == 33
        assert bag.seek_step("/rollout/state", 10_000) == 50
        assert bag.seek_step("/rollout/state", 0) == 0
        assert bag.decode("/rollout/state", 33).step == 133
        # only the state topic's index was loaded
        assert set(bag._index) == {"/rollout/state"}
        assert np.array_equal(bag.log_times("/rollout/action"), rec.log_times + 1000)


def test_messages_come_in_log_time_order_across_topics(rollout_bag: tuple[Path, object]) -> None:
    path, rec = rollout_bag
    with Bag(path) as bag:
        msgs = list(bag.messages(start_time=int(rec.log_times[3]), end_time=int(rec.log_times[5])))
    assert [m.topic for m in msgs] == ["/rollout/state", "/rollout/action", "/rollout/reward_terms"] * 2
    assert [m.log_time for m in msgs] == sorted(m.log_time for m in msgs)


def bad_file(tmp_path: Path, name: str, content: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content)
    return p


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.mcap", b"", "empty"),
        ("text.mcap", b"hello world, not a bag\n" * 10, "not an MCAP file"),
        ("old.bag", b"#ROSBAG V2.0\n" + bytes(100), "ROS 1 bag"),
        ("x.npz", b"PK\x03\x04" + bytes(100), "zip/npz"),
        ("junk.mcap", b"\x89MCAP0\r\n" + bytes(range(256)) * 20, "corrupt"),
        ("header_only.mcap", b"\x89MCAP0\r\n\x01\x08\x00\x00\x00\x00\x00\x00\x00", "corrupt"),
    ],
)
def test_foreign_and_corrupt_files_fail_in_one_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = bad_file(tmp_path, name, content)
    with pytest.raises(BagError, match=message) as err:
        Bag(path)
    assert "\n" not in str(err.value)


def test_other_kinds_of_not_a_rollout_bag(tmp_path: Path) -> None:
    db = tmp_path / "sq.db3"
    sqlite3.connect(db).execute("create table t (x)").connection.commit()
    with pytest.raises(BagError, match="sqlite3"):
        Bag(db)
    with pytest.raises(BagError, match="does not exist"):
        Bag(tmp_path / "missing")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(BagError, match="no .mcap files"):
        Bag(tmp_path / "empty_dir")
    from mcap.writer import Writer

    with open(tmp_path / "foxglove.mcap", "wb") as f:
        w = Writer(f)
        w.start(profile="", library="test")
        w.finish()
    with pytest.raises(BagError, match="not a ROS 2 bag"):
        Bag(tmp_path / "foxglove.mcap")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed")
    with pytest.raises(BagError, match="not a valid rosbag2 metadata file"):
        Bag(tmp_path / "broken")


def test_every_truncation_point_gives_an_error_or_a_recovery_never_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "whole.mcap"
    write_synthetic_rollout(path, steps=12, chunk_size=2000, compression="zstd")
    data = path.read_bytes()
    cut = tmp_path / "cut.mcap"
    t0 = time.monotonic()
    for end in range(9, len(data), max(1, len(data) // 97)):
        cut.write_bytes(data[:end])
        with pytest.raises(BagError):
            Bag(cut)
        try:
            with Bag(cut, recover=True) as bag:
                for topic in bag.topics:
                    n = bag.count(topic)
                    assert all(bag.raw(topic, i).data is not None for i in range(n))
        except BagError as e:
            assert "\n" not in str(e)
    assert time.monotonic() - t0 < 20


@pytest.mark.parametrize("compression", ["none", "zstd", "lz4"])
def test_flipped_bytes_inside_a_chunk_are_reported(tmp_path: Path, compression: str) -> None:
    State = get_type("rollout_msgs/msg/State")
    path = tmp_path / "flip.mcap"
    with BagWriter(path, compression=compression, chunk_crc=True) as w:
        w.add_topic("/rollout/state", "rollout_msgs/msg/State")
        for s in range(20):
            w.write("/rollout/state", serialize(State(step=s, num_envs=4, obs_dim=100, obs=np.zeros((4, 100), np.float32))), T0 + s)
    data = bytearray(path.read_bytes())
    at = data.index(b"State") + 1500 if compression == "none" else len(data) // 3
    data[at : at + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    with Bag(path) as bag, pytest.raises(BagError, match="corrupt") as err:
        bag.read_arrays("/rollout/state", ["obs"])
    assert "\n" not in str(err.value)


def test_unknown_topic_names_the_ones_there(rollout_bag: tuple[Path, object]) -> None:
    with Bag(rollout_bag[0]) as bag, pytest.raises(BagError, match=r"no topic /x \(topics: /rollout/robot"):
        bag.count("/x")


def test_bag_with_a_message_that_does_not_decode(tmp_path: Path) -> None:
    with BagWriter(tmp_path / "bad.mcap") as w:
        w.add_topic("/rollout/state", "rollout_msgs/msg/State")
        w.write("/rollout/state", b"\x00\x01\x00\x00\x01", T0)
    with Bag(tmp_path / "bad.mcap") as bag, pytest.raises(BagError, match="does not decode"):
        bag.decode("/rollout/state", 0)
    String = get_type("std_msgs/msg/String")
    assert serialize(String(data="x"))
