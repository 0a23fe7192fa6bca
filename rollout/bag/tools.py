"""`info` (what `ros2 bag info` prints), `check` (walk every chunk, check every CRC) and `repair`
(make a crashed or damaged recording whole again, keeping all that is readable)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rollout.bag.mcapfile import BadRange, McapFile
from rollout.bag.records import MAGIC
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
            if r is not None and r.summary_problem:
                lines.append(
                    f"Warning:           {f.path.name}: its summary is unusable ({r.summary_problem}); described "
                    f"from its chunks; run `rollout bag repair {bag.path}`"
                )
            if r is not None and not r.complete:
                lines.append(
                    f"Warning:           {f.path.name} is truncated (the recording did not finish); "
                    f"{r.chunks_ok} complete chunks are readable; run `rollout bag repair {bag.path}`"
                )
            elif r is not None and r.bad:
                lines.append(
                    f"Warning:           {f.path.name} has {len(r.bad)} unreadable parts; "
                    f"`rollout bag check {bag.path}` lists them"
                )
        return "\n".join(lines) + "\n"


@dataclass
class FileCheck:
    """What a full walk over one MCAP file found."""

    path: Path
    messages: dict[str, int]  # topic -> messages in readable chunks
    chunks_ok: int
    bad: list[BadRange]
    problems: list[str]  # everything wrong, one line each (bad chunks, summary, truncation)


@dataclass
class CheckReport:
    """`check(path)`: every file of a bag walked chunk by chunk, every CRC checked."""

    path: Path
    files: list[FileCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.problems for f in self.files)

    def lines(self) -> list[str]:
        out = []
        for f in self.files:
            n = sum(f.messages.values())
            state = "ok" if not f.problems else f"{len(f.problems)} problem(s)"
            out.append(f"{f.path.name}: {f.chunks_ok} chunks and {n} messages readable, {state}")
            out += [f"  {p}" for p in f.problems]
        return out


def _walk(path: Path) -> tuple[McapFile, FileCheck]:
    """Open `path` by walking every chunk; what was found (the file stays open for the caller)."""
    f = McapFile(path, rescan=True)
    r = f.scan_result
    assert r is not None
    origin = f.stats.start if f.stats else 0
    problems = []
    if r.summary_problem:
        problems.append(f"the summary is unusable ({r.summary_problem}); the chunks were walked instead")
    elif not r.complete:
        problems.append("the file has no footer (the recording did not finish)")
    problems += [b.describe(origin) for b in r.bad]
    if r.problems and not r.bad:
        problems += [p for p in r.problems if "truncated" in p]
    counts = {ch.topic: int(f.channel_index(cid).log_time.size) for cid, ch in f.channels.items()}
    return f, FileCheck(path, counts, r.chunks_ok, list(r.bad), problems)


def check(path: str | os.PathLike[str]) -> CheckReport:
    """Walk every chunk of every file of the bag at `path`, checking CRCs and records, and the
    summary against what the chunks hold. Nothing is changed."""
    report = CheckReport(Path(path))
    for file in bag_files(path):
        walked, result = _walk(file)
        try:
            try:  # the summary on its own: does it agree with the chunks?
                strict = McapFile(file)
            except BagError as e:
                if not any("summary" in p or "footer" in p for p in result.problems):
                    result.problems.append(str(e).replace(f"{file} ", "", 1))
            else:
                claimed = {strict.channels[c].topic: n for c, n in (strict.stats.channel_message_counts if strict.stats else {}).items() if c in strict.channels}
                strict.close()
                for topic, n in claimed.items():
                    have = result.messages.get(topic, 0)
                    if have != n:
                        result.problems.append(f"{topic}: the summary counts {n} messages, the readable chunks hold {have}")
        finally:
            walked.close()
        report.files.append(result)
    return report


@dataclass
class RepairResult:
    """What `repair` wrote and what it had to leave out."""

    path: Path
    kept: dict[str, int]  # topic -> messages written
    dropped: list[str]  # one line per damaged or missing part of the input
    lost: dict[str, int]  # topic -> messages the input's summary counts that could not be kept (when it had one)

    def __fspath__(self) -> str:
        return str(self.path)

    def lines(self) -> list[str]:
        out = [f"repaired bag: {self.path}", f"  kept {sum(self.kept.values())} messages"]
        out += [f"  lost {n} messages of {t}" for t, n in self.lost.items() if n]
        out += [f"  dropped: {d}" for d in self.dropped]
        if not self.dropped and not any(self.lost.values()):
            out.append("  nothing was dropped")
        return out


def _default_output(path: Path) -> Path:
    if path.is_dir():
        return path.with_name(path.name + "_repaired")
    return path.with_name(path.stem + "_repaired.mcap")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _is_bag(path: Path) -> bool:
    """A folder of .mcap files or a file that starts like MCAP (what a repair may replace)."""
    if path.is_dir():
        return any(path.glob("*.mcap"))
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _summary_counts(file: Path) -> dict[str, int] | None:
    try:
        f = McapFile(file)
    except BagError:
        return None
    try:
        counts = f.stats.channel_message_counts if f.stats else {}
        return {f.channels[c].topic: n for c, n in counts.items() if c in f.channels}
    finally:
        f.close()


def repair(
    path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RepairResult:
    """Rewrite a damaged or unfinished bag into a complete, indexed one, keeping all it can.

    Every chunk is walked and its CRC checked: a bad chunk is skipped and the rest kept (also
    when its length field broke: the next chunk is found again), a missing or corrupt summary is
    rebuilt from the chunks, a chunk a crash cut in half is dropped. Files are rewritten one for
    one with their topics, QoS, times and sequence numbers; a folder gets a fresh metadata.yaml.
    The output is written under a temporary name and renamed when complete, so there is never a
    partial bag under the output's name, and running it again replaces an earlier output.

    Args:
        path: a `.mcap` file or a rosbag2 folder.
        output: where to write; default `<name>_repaired.mcap` or `<folder>_repaired/` beside it.
        in_place: replace the original with the repaired bag (the original is kept otherwise).
        progress: called with (messages done, messages total) as it goes.

    Returns:
        The path written and exactly what was dropped (`RepairResult.lines()` says it in words).
    """
    src = Path(path)
    files = bag_files(src)
    if in_place and output is not None:
        raise BagError("give either an output path or in_place, not both")
    dst = src if in_place else Path(output) if output is not None else _default_output(src)
    if not in_place and dst.resolve() == src.resolve():
        raise BagError(f"the output {dst} is the bag being repaired; use in_place to replace it")
    if dst.exists() and not in_place and not _is_bag(dst):
        raise BagError(f"{dst} already exists and is not a bag; choose another output path")
    if src.is_dir() and dst.suffix == ".mcap" and len(files) > 1:
        raise BagError(f"{src} has {len(files)} files; repair it into a folder, not a single .mcap file")
    tmp = dst.with_name(f".{dst.name}.partial")  # same folder: the final rename is atomic
    if dst.suffix == ".mcap":
        tmp = dst.with_name(f".{dst.stem}.partial.mcap")
    _remove(tmp)  # what an interrupted earlier run left
    claimed = [_summary_counts(f) for f in files]
    walked: list[McapFile] = []
    kept: dict[str, int] = {}
    dropped: list[str] = []
    try:
        for f in files:
            opened, found = _walk(f)
            walked.append(opened)
            dropped += [f"{f.name}: {p}" for p in found.problems if "summary counts" not in p]
        total = sum(f.stats.message_count if f.stats else 0 for f in walked)
        compression = next((c.compression for f in walked for c in f.chunks if c.compression), "none")
        done = 0
        with BagWriter(tmp, compression=compression or "none") as out:  # type: ignore[arg-type]
            for k, f in enumerate(walked):
                if k:
                    out.split()
                entries = []
                for cid, ch in f.channels.items():
                    schema = f.schemas.get(ch.schema_id)
                    ix = f.channel_index(cid)
                    if schema is None:  # its schema was in a lost chunk: its messages cannot be described
                        dropped.append(f"{f.path.name}: {ix.log_time.size} messages of {ch.topic} (its schema is lost)")
                        continue
                    out.add_topic(
                        ch.topic,
                        schema.name,
                        qos=ch.metadata.get("offered_qos_profiles", ""),
                        schema=bytes(schema.data).decode(errors="replace"),
                        type_hash=ch.metadata.get("topic_type_hash", ""),
                    )
                    entries += [(int(c), int(o), ch.topic) for c, o in zip(ix.chunk, ix.offset)]
                entries.sort(key=lambda e: (e[0], e[1]))  # file order
                for c, o, topic in entries:
                    _, seq, log_time, pub, data = f.message(c, o)
                    out.write(topic, data, log_time, publish_time=pub, sequence=seq)
                    kept[topic] = kept.get(topic, 0) + 1
                    done += 1
                    if progress is not None and done % 256 == 0:
                        progress(done, total)
        if progress is not None:
            progress(done, total)
        if not done:
            raise BagError(f"nothing in {src} can be recovered: no readable chunk holds a message")
    except BaseException:
        _remove(tmp)
        raise
    finally:
        for f in walked:
            f.close()
    lost: dict[str, int] = {}
    if all(c is not None for c in claimed):
        for counts in claimed:
            for topic, n in (counts or {}).items():
                lost[topic] = lost.get(topic, 0) + n
        lost = {t: max(0, n - kept.get(t, 0)) for t, n in lost.items()}
    _put_in_place(tmp, dst)
    return RepairResult(dst, kept, dropped, lost)


def _put_in_place(tmp: Path, dst: Path) -> None:
    """Move the finished output `tmp` to `dst`, replacing what is there (an earlier output, or the
    original for an in-place repair)."""
    if not tmp.is_dir():
        os.replace(tmp, dst)  # atomic: a bare file
        return
    for p in sorted(tmp.glob(f"{tmp.name}_*.mcap")):  # file names follow the folder name
        p.rename(tmp / (dst.name + p.name[len(tmp.name) :]))
    _rewrite_metadata_names(tmp, tmp.name, dst.name)
    old = dst.with_name(f".{dst.name}.old")
    _remove(old)
    if dst.exists():
        os.replace(dst, old)
    os.replace(tmp, dst)
    _remove(old)


def _rewrite_metadata_names(folder: Path, old: str, new: str) -> None:
    meta = folder / "metadata.yaml"
    if meta.is_file():
        meta.write_text(meta.read_text().replace(f'"{old}_', f'"{new}_'))
