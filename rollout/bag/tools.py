"""`info` (what `ros2 bag info` prints) and `repair` (make a crashed recording whole again)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from rollout.bag.mcapfile import McapFile
from rollout.bag.reader import Bag, bag_files
from rollout.bag.writer import BagWriter
from rollout.errors import BagError

_INDENT = " " * 19


def _size(n: int) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    x, k = float(n), 0
    while x >= 1024 and k < 4:
        x /= 1024
        k += 1
    return f"{x:.0f} {units[k]}" if k == 0 else f"{x:.1f} {units[k]}"


def _seconds(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _stamp(ns: int) -> str:
    tm = time.localtime(ns // 1_000_000_000)
    date = time.strftime("%b ", tm) + f"{tm.tm_mday:2d}" + time.strftime(" %Y %H:%M:%S", tm)
    return f"{date}.{ns % 1_000_000_000:09d} ({_seconds(ns)})"


def info(path: str | os.PathLike[str]) -> str:
    """A description of the bag at `path` laid out like `ros2 bag info`.

    A file cut short by a crash is still described (from its complete chunks), with a line
    that says so and how to repair it.
    """
    with Bag(path, recover=True) as bag:
        names = [str(f.path.relative_to(bag.path)) if bag.path.is_dir() else str(f.path) for f in bag.files]
        start, end = bag.start_time, bag.end_time
        lines = [
            "",
            "Files:             " + names[0],
            *(_INDENT + n for n in names[1:]),
            f"Bag size:          {_size(bag.size)}",
            "Storage id:        mcap",
            f"Duration:          {_seconds(end - start)}s",
            f"Start:             {_stamp(start)}",
            f"End:               {_stamp(end)}",
            f"Messages:          {bag.message_count}",
        ]
        topics = [
            f"Topic: {t.name} | Type: {t.type} | Count: {t.count} | Serialization Format: {t.serialization_format}"
            for t in bag.topics.values()
        ]
        lines.append("Topic information: " + (topics[0] if topics else ""))
        lines += [_INDENT + t for t in topics[1:]]
        for f in bag.files:
            r = f.scan_result
            if r is not None and not r.complete:
                lines.append(
                    f"Warning:           {f.path.name} is truncated (the recording did not finish); "
                    f"{r.chunks_ok} complete chunks are readable; run `rollout bag repair {bag.path}`"
                )
            elif r is not None and r.chunks_bad:
                lines.append(f"Warning:           {f.path.name} has {r.chunks_bad} unreadable chunks")
        return "\n".join(lines) + "\n"


def _default_output(path: Path) -> Path:
    if path.is_dir():
        return path.with_name(path.name + "_repaired")
    return path.with_name(path.stem + "_repaired.mcap")


def repair(
    path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Rewrite a bag whose recording was cut short into a complete, indexed bag.

    Every message in a complete chunk is kept (a chunk the crash cut in half is lost); files are
    rewritten one for one with their topics, QoS, times and sequence numbers, and a folder gets
    a fresh metadata.yaml. Healthy bags come out unchanged in content.

    Args:
        path: a `.mcap` file or a rosbag2 folder.
        output: where to write; default `<name>_repaired.mcap` or `<folder>_repaired/` beside it.
        in_place: replace the original with the repaired bag (the original is kept otherwise).
        progress: called with (messages done, messages total) as it goes.

    Returns:
        The path of the repaired bag.
    """
    src = Path(path)
    files = bag_files(src)
    if in_place and output is not None:
        raise BagError("give either an output path or in_place, not both")
    dst = Path(output) if output is not None else _default_output(src)
    if in_place:
        dst = src.with_name(src.name + ".repairing") if src.is_dir() else src.with_name(src.stem + ".repairing.mcap")
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
    if src.is_dir() and dst.suffix == ".mcap" and len(files) > 1:
        raise BagError(f"{src} has {len(files)} files; repair it into a folder, not a single .mcap file")
    opened = [McapFile(f, scan=True) for f in files]
    try:
        total = sum(f.stats.message_count if f.stats else 0 for f in opened)
        compression = next((c.compression for f in opened for c in f.chunks if c.compression), "none")
        done = 0
        with BagWriter(dst, compression=compression or "none") as out:  # type: ignore[arg-type]
            for k, f in enumerate(opened):
                if k:
                    out.split()
                entries = []
                for cid, ch in f.channels.items():
                    schema = f.schemas.get(ch.schema_id)
                    if schema is None:
                        continue  # its schema was in a lost chunk; its messages cannot be described
                    out.add_topic(
                        ch.topic,
                        schema.name,
                        qos=ch.metadata.get("offered_qos_profiles", ""),
                        schema=bytes(schema.data).decode(),
                        type_hash=ch.metadata.get("topic_type_hash", ""),
                    )
                    ix = f.channel_index(cid)
                    entries += [(int(c), int(o), ch.topic) for c, o in zip(ix.chunk, ix.offset)]
                entries.sort(key=lambda e: (e[0], e[1]))  # file order
                for c, o, topic in entries:
                    _, seq, log_time, pub, data = f.message(c, o)
                    out.write(topic, data, log_time, publish_time=pub, sequence=seq)
                    done += 1
                    if progress is not None and done % 256 == 0:
                        progress(done, total)
        if progress is not None:
            progress(done, total)
    except BaseException:
        for f in opened:
            f.close()
        if in_place and dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        raise
    for f in opened:
        f.close()
    if not in_place:
        return dst
    if src.is_dir():
        shutil.rmtree(src)
        os.replace(dst, src)
        # file names follow the folder name
        for p in sorted(src.glob(f"{dst.name}_*.mcap")):
            p.rename(src / (src.name + p.name[len(dst.name) :]))
        _rewrite_metadata_names(src, dst.name)
    else:
        os.replace(dst, src)
    return src


def _rewrite_metadata_names(folder: Path, old: str) -> None:
    meta = folder / "metadata.yaml"
    if meta.is_file():
        meta.write_text(meta.read_text().replace(f'"{old}_', f'"{folder.name}_'))
