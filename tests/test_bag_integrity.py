"""Damage never passes unnoticed: chunk and summary CRCs are on and checked on every read,
`check` names each bad chunk by topic and time, and `repair` keeps everything readable, says
what it dropped, never leaves a partial output and can be run again."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader

from rollout.bag import Bag, BagWriter, check, info, repair
from rollout.bag import records as rec
from rollout.bag.mcapfile import McapFile
from rollout.codec import get_type, serialize
from rollout.errors import BagError
from rollout.export.to_npz import bag_to_npz

T0 = 1_750_000_000_000_000_000
STEPS = 120
ROLLOUT = [sys.executable, "-m", "rollout.cli"]


def write_bag(path: Path, compression: str = "none") -> None:
    State = get_type("rollout_msgs/msg/State")
    with BagWriter(path, compression=compression, chunk_size=8 * 1024) as w:  # type: ignore[arg-type]
        w.add_topic("/rollout/state", "rollout_msgs/msg/State")
        for s in range(STEPS):
            obs = np.random.default_rng(s).normal(size=(4, 100)).astype(np.float32)
            w.write("/rollout/state", serialize(State(step=s, num_envs=4, obs_dim=100, obs=obs)), T0 + s * 10**7)


def chunk_offsets(path: Path) -> list[tuple[int, int]]:
    f = McapFile(path)
    try:
        return [(c.offset, c.length) for c in f.chunks]
    finally:
        f.close()


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


def steps(path: Path) -> np.ndarray:
    with Bag(path) as bag:
        return bag.read_arrays("/rollout/state", ["step"])["step"]


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_crcs_are_on_by_default_and_a_flipped_payload_bit_is_named(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "b.mcap"
    write_bag(path, compression)
    with open(path, "rb") as f:  # the mcap library reads every chunk and checks each CRC
        assert sum(1 for _ in make_reader(f).iter_messages()) == STEPS
    f = McapFile(path)
    crcs = [rec.parse_chunk(f.buf, c.offset + 9, c.offset + c.length).crc for c in f.chunks]
    f.close()
    assert len(crcs) > 4 and all(crcs)  # not one chunk without its CRC
    offsets = chunk_offsets(path)
    off, length = offsets[3]
    flip(path, off + length - 50)  # inside the chunk's (compressed) records
    with Bag(path) as bag, pytest.raises(BagError) as err:
        bag.read_arrays("/rollout/state", ["obs"])
    msg = str(err.value)
    assert "\n" not in msg and "/rollout/state" in msg and re.search(r"log time [\d.]+\.\.[\d.]+ s into the bag", msg)
    with pytest.raises(BagError):  # to_npz, on the same read path, refuses rather than writing wrong arrays
        bag_to_npz(path, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()
    report = check(path)
    assert not report.ok and len(report.files[0].bad) == 1
    assert "/rollout/state" in report.lines()[1]


def test_check_of_a_healthy_bag_is_clean_and_exits_0(tmp_path: Path) -> None:
    write_bag(tmp_path / "ok.mcap")
    p = subprocess.run([*ROLLOUT, "bag", "check", str(tmp_path / "ok.mcap")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert re.search(r"\d+ chunks and 120 messages readable, ok", p.stdout)


def test_repair_skips_a_bad_chunk_keeps_the_rest_and_says_what_it_dropped(tmp_path: Path) -> None:
    path = tmp_path / "b.mcap"
    write_bag(path)
    off, length = chunk_offsets(path)[2]
    flip(path, off + length - 100)
    with Bag(path) as bag:
        before = bag.count("/rollout/state")
    result = repair(path)
    kept = steps(result.path)
    lost = STEPS - kept.size
    assert 0 < lost < STEPS / 4  # one chunk's worth, not everything after it
    assert np.array_equal(kept, np.setdiff1d(np.arange(STEPS), np.setdiff1d(np.arange(STEPS), kept)))
    assert result.lost == {"/rollout/state": lost} and before == STEPS
    assert any("CRC" in d and "/rollout/state" in d for d in result.dropped)
    assert check(result.path).ok
    again = repair(path)  # a retry replaces the earlier output instead of failing on "already exists"
    assert np.array_equal(steps(again.path), kept)


def test_repair_walks_past_a_chunk_whose_length_field_broke(tmp_path: Path) -> None:
    path = tmp_path / "b.mcap"
    write_bag(path)
    off, _ = chunk_offsets(path)[2]
    flip(path, off + 3)  # the record length: the next record's start is lost
    kept = steps(repair(path).path)
    assert kept.size >= STEPS - 2 * (STEPS // len(chunk_offsets(tmp_path / "b_repaired.mcap")) + 10)
    assert kept[-1] == STEPS - 1  # the chunks after the broken one are all there


def test_a_flipped_summary_byte_is_rebuilt_from_intact_chunks(tmp_path: Path) -> None:
    path = tmp_path / "b.mcap"
    write_bag(path)
    size = path.stat().st_size
    flip(path, size - 200)  # in the summary section
    with pytest.raises(BagError, match=r"summary.*rollout bag repair"):
        Bag(path)
    assert "summary" in " ".join(check(path).lines())
    assert "Warning" in info(path)
    result = repair(path)
    assert np.array_equal(steps(result.path), np.arange(STEPS))  # every message: the chunks were fine
    assert result.lost == {} and any("summary" in d for d in result.dropped)


def test_repair_never_leaves_a_partial_output(tmp_path: Path) -> None:
    path = tmp_path / "junk.mcap"
    write_bag(path)
    data = bytearray(path.read_bytes())
    for off, length in chunk_offsets(path):
        data[off + length - 10] ^= 0xFF  # every chunk bad
    path.write_bytes(bytes(data))
    with pytest.raises(BagError, match="nothing .* can be recovered"):
        repair(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mcap"]  # no output, no temp file


def test_repair_refuses_to_overwrite_something_that_is_not_a_bag(tmp_path: Path) -> None:
    write_bag(tmp_path / "b.mcap")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(BagError, match="not a bag"):
        repair(tmp_path / "b.mcap", output=tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_folder_bag_repair_in_place_twice(tmp_path: Path) -> None:
    State = get_type("rollout_msgs/msg/State")
    with BagWriter(tmp_path / "run", chunk_size=4096) as w:
        w.add_topic("/rollout/state", "rollout_msgs/msg/State")
        for s in range(50):
            w.write("/rollout/state", serialize(State(step=s, num_envs=2, obs_dim=10, obs=np.zeros((2, 10), np.float32))), T0 + s)
    for _ in range(2):
        assert repair(tmp_path / "run", in_place=True).path == tmp_path / "run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metadata.yaml", "run_0.mcap"]
    assert np.array_equal(steps(tmp_path / "run"), np.arange(50))


def test_metadata_whose_bag_information_is_a_list_is_one_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "bag"
    folder.mkdir()
    (folder / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  - 1\n  - 2\n")
    for args in (["bag", "info", str(folder)], ["run", "to_npz", str(folder), "-o", str(tmp_path / "x.npz")]):
        p = subprocess.run([*ROLLOUT, *args], capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
        assert re.search(r"error: .*rosbag2_bagfile_information must be a mapping", p.stderr), p.stderr



