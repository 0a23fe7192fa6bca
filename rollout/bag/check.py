"""`check(path)`: read every message of a bag back through its index and say what is wrong.

A minimal check on the reader: each message must decode with its topic's schema, the counts
must match the summary, and every file must end in a valid footer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rollout.bag.reader import Bag
from rollout.errors import RolloutError


@dataclass(frozen=True)
class CheckReport:
    path: Path
    messages: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.ok:
            return f"{self.path}: ok, {self.messages} messages read back"
        return "\n".join(f"{self.path}: {p}" for p in self.problems)


def check(path: str | os.PathLike[str]) -> CheckReport:
    """Decode every message of the bag at `path`; a report with one line per problem."""
    problems: list[str] = []
    read = 0
    with Bag(path, recover=True) as bag:
        for f in bag.files:
            r = f.scan_result
            if r is not None and not r.complete:
                problems.append(f"{f.path.name} is truncated; {r.chunks_ok} complete chunks (rollout bag repair)")
            elif r is not None and r.chunks_bad:
                problems.append(f"{f.path.name} has {r.chunks_bad} unreadable chunks")
        for name, topic in bag.topics.items():
            n = 0
            try:
                for _ in bag.iter_decoded(name):
                    n += 1
            except RolloutError as e:
                problems.append(f"{name}: message {n} does not read back: {e}")
            if n != bag.count(name):
                problems.append(f"{name}: {n} of {bag.count(name)} indexed messages read back")
            elif topic.count and n != topic.count:
                problems.append(f"{name}: {n} messages, the summary says {topic.count}")
            read += n
    return CheckReport(Path(path), read, problems)
