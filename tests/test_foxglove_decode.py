"""Foxglove's own libraries read our recordings exactly as we do: @mcap/core opens the bag,
@foxglove/rosmsg parses every schema and @foxglove/rosmsg2-serialization decodes every message
of every topic to the same values as `Bag.decode`, consuming every byte."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from rollout.bag import Bag, bag_files
from recordings import record_humanoid

JS = Path(__file__).parent / "js"
NODE = shutil.which("node")

if NODE is None:
    pytest.skip("node is not on PATH: install Node.js to check bags with Foxglove's decoders", allow_module_level=True)
if not (JS / "node_modules" / "@foxglove" / "rosmsg2-serialization").is_dir():
    pytest.skip("tests/js/node_modules is missing: run `npm ci` in tests/js", allow_module_level=True)


def record(path: Path, compression: str) -> Path:
    return record_humanoid(path, num_envs=3, steps=30, seed=1, compression=compression, tf_envs=(0, 1))


def foxglove_decode(bag: Path) -> dict:
    cmd = [NODE, str(JS / "decode_bag.mjs"), *map(str, bag_files(bag))]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def as_json(value: object) -> object:
    """Our plain value as it comes out of JSON: non-finite floats become strings, tuples lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    return value


def differences(ours: object, theirs: object, where: str = "") -> list[str]:
    """Where two plain values differ (field names, lengths, types of number, values)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if ours.keys() != theirs.keys():
            return [f"{where}: fields {sorted(ours)} != {sorted(theirs)}"]
        return [d for k in ours for d in differences(ours[k], theirs[k], f"{where}.{k}")]
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{where}: {len(ours)} elements != {len(theirs)}"]
        return [d for i, (a, b) in enumerate(zip(ours, theirs)) for d in differences(a, b, f"{where}[{i}]")][:5]
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return [] if type(ours) is type(theirs) and ours == theirs else [f"{where}: {ours!r} != {theirs!r}"]
    if isinstance(ours, int) and isinstance(theirs, str):  # a 64-bit integer past 2^53
        return [] if str(ours) == theirs else [f"{where}: {ours!r} != {theirs!r}"]
    return [] if ours == theirs else [f"{where}: {ours!r} != {theirs!r}"]


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_foxglove_decodes_every_message_of_every_topic_as_we_do(tmp_path: Path, compression: str) -> None:
    bag_path = record(tmp_path / "run", compression)
    fox = foxglove_decode(bag_path)

    assert [f["profile"] for f in fox["files"]] == ["ros2"]
    with Bag(bag_path) as bag:
        topics = bag.topics
        assert set(fox["channels"]) == set(topics)
        assert {"/tf", "/robot_description", "/rollout/episodes"} <= set(topics)  # every kind of message is covered
        assert sum(f["statistics"]["messageCount"] for f in fox["files"]) == bag.message_count
        for name, topic in topics.items():
            channel = fox["channels"][name]
            assert channel["schemaName"] == topic.type and channel["schemaEncoding"] == "ros2msg"
            assert channel["messageEncoding"] == "cdr"
            assert channel["metadata"]["topic_type_hash"] == topic.type_hash
            assert channel["metadata"]["offered_qos_profiles"] == topic.offered_qos_profiles

            theirs = fox["messages"][name]
            assert len(theirs) == topic.count > 0, name
            for i, msg in enumerate(theirs):
                raw = bag.raw(name, i)
                times = int(msg["logTime"]), int(msg["publishTime"])  # strings past 2^53
                assert (*times, msg["sequence"]) == (raw.log_time, raw.publish_time, raw.sequence)
                assert msg["consumed"] == msg["size"] == len(raw.data), (
                    f"{name}[{i}]: Foxglove read {msg['consumed']} of {msg['size']} bytes"
                )
                ours = as_json(bag.decode(name, i).to_dict())
                assert not differences(ours, msg["value"]), f"{name}[{i}]: {differences(ours, msg['value'])}"
        # the comparison tells messages apart: step 3's state is not step 4's
        assert differences(
            as_json(bag.decode("/rollout/state", 3).to_dict()), fox["messages"]["/rollout/state"][4]["value"]
        )
