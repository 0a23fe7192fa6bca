"""Write a set of shards (per-rank bags, or one bag of namespaced sims) as one bag of one rollout.

    rollout bag merge rollouts/rank0 rollouts/rank1 -o rollouts/all
    rollout bag merge rollouts/two_hosts -o rollouts/all --compression zstd

The envs are concatenated in rank order on the plain topics (/rollout/state, ...), only the
control steps every shard has, exactly the messages `replay bag:=A,B` plays (rollout.replay.shards);
written one step at a time. For tools that take one bag: Foxglove, rosbags, `ros2 bag play`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path


def merge_bags(
    paths: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], *, compression: str = "none"
) -> tuple[int, list[str]]:
    """Write the shards at `paths` as one bag at `output`; returns (messages written, what to know)."""
    from rollout.bag import BagWriter
    from rollout.replay.shards import ShardSet

    with ShardSet.open(paths) as merged, BagWriter(output, compression=compression) as w:  # type: ignore[arg-type]
        for name, info in merged.topics.items():
            w.add_topic(name, info.type, qos=info.offered_qos_profiles or None, schema=merged.schema(info.type),
                        type_hash=info.type_hash or None)  # fmt: skip
        seq: dict[str, int] = {}
        for m in merged.messages():
            seq[m.topic] = seq.get(m.topic, 0) + 1
            w.write(m.topic, m.data, m.log_time, sequence=seq[m.topic])
        return sum(seq.values()), [merged.summary, *merged.notes]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="the shards' bags (folders or .mcap files)")
    p.add_argument("-o", "--output", required=True, help="the bag to write (a new folder, or a file ending in .mcap)")
    p.add_argument("--compression", choices=("none", "lz4", "zstd"), default="none", help="chunk compression")


def main(args: argparse.Namespace) -> int:
    count, notes = merge_bags(args.paths, args.output, compression=args.compression)
    print("\n".join(notes))
    print(f"wrote {Path(args.output)}: {count} messages")
    return 0
