"""Bags: rosbag2-compatible MCAP files written from serialized messages and read back as numpy.

    from rollout.bag import BagWriter, Bag, info, repair

- `BagWriter(path, compression=..., split_size=...)`: `add_topic`, `write(topic, cdr, log_time)`,
  `close()`; a folder (rosbag2 layout with metadata.yaml) or a bare `.mcap` file.
- `Bag(path)`: topics with types and counts, messages by index or time, `read_arrays` to stack
  a topic's fields over time, `seek_time` / `seek_step` through the index.
- `info(path)`: text like `ros2 bag info`; `check(path)`: walk every chunk, check every CRC, say
  what is damaged (topic, time range); `repair(path)`: rewrite a crashed or damaged recording's
  readable chunks into a whole bag and say what was dropped.
"""

from rollout.bag.compression import Compression
from rollout.bag.metadata import offered_qos_yaml
from rollout.bag.reader import Bag, RawMessage, TopicInfo, bag_files, open_bag
from rollout.bag.tools import CheckReport, RepairResult, check, info, repair
from rollout.bag.writer import DEFAULT_CHUNK_SIZE, BagWriter, topic_name_error

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "Bag",
    "BagWriter",
    "CheckReport",
    "Compression",
    "RawMessage",
    "RepairResult",
    "TopicInfo",
    "bag_files",
    "check",
    "info",
    "offered_qos_yaml",
    "open_bag",
    "repair",
    "topic_name_error",
]
