"""Shards: the sims of one rollout recorded under their own namespaces, in one bag or several.

Multi-GPU training runs one sim per rank (or host); each publishes under its namespace
(`namespace:=rank0` gives /rank0/rollout/state), so a recorder that takes all of them keeps them
apart, and one recorder per host writes one bag per host. A shard is one namespace in one bag;
`shards_of(bags)` finds every shard, each read through a `ShardView` that shows its topics
under the plain rollout names, so everything that reads a `Bag` reads a shard the same way.

Shards are told apart by namespace and ordered by it (rank2 before rank10); a bag of plain,
un-namespaced topics is one shard, ordered by its place in the list of bags. One namespace in
two bags is an error: the shards could not be told apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rollout.bag.reader import Bag, RawMessage, TopicInfo
from rollout.errors import BagError
from rollout.topics import STATE, namespaced, split_namespace


class ShardView:
    """One namespace of a bag, read as a bag of plain rollout topics (/rollout/state, ...)."""

    def __init__(self, bag: Bag, namespace: str) -> None:
        self.bag = bag
        self.namespace = namespace
        self._topics = {}
        for name, info in bag.topics.items():
            split = split_namespace(name)
            if split is not None and split[0] == namespace:
                self._topics[split[1]] = info

    @property
    def path(self) -> Path:
        return self.bag.path

    @property
    def label(self) -> str:
        """How a user names this shard: `bag` or `bag [rank0]`."""
        return f"{self.bag.path} [{self.namespace}]" if self.namespace else str(self.bag.path)

    @property
    def topics(self) -> dict[str, TopicInfo]:
        return dict(self._topics)

    def _name(self, topic: str) -> str:
        return namespaced(topic, self.namespace)

    def topic(self, name: str) -> TopicInfo:
        return self.bag.topic(self._name(name))

    def count(self, topic: str) -> int:
        return self.bag.count(self._name(topic))

    def log_times(self, topic: str) -> np.ndarray:
        return self.bag.log_times(self._name(topic))

    def steps(self, topic: str) -> np.ndarray:
        return self.bag.steps(self._name(topic))

    def raw(self, topic: str, i: int) -> RawMessage:
        return self.bag.raw(self._name(topic), i)

    def decode(self, topic: str, i: int) -> Any:
        return self.bag.decode(self._name(topic), i)

    def iter_decoded(self, topic: str, indices: Sequence[int] | np.ndarray | None = None) -> Iterator[Any]:
        return self.bag.iter_decoded(self._name(topic), indices)

    def read_arrays(self, topic: str, fields: Sequence[str], **kwargs: Any) -> dict[str, np.ndarray]:
        return self.bag.read_arrays(self._name(topic), fields, **kwargs)


def _natural(text: str) -> list[Any]:
    """Sort key that puts rank2 before rank10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def namespaces(bag: Bag) -> list[str]:
    """The namespaces of the sims recorded in `bag` ("" for plain topics), in shard order."""
    found = {split[0] for name in bag.topics if (split := split_namespace(name)) is not None and split[1] == STATE}
    return sorted(found, key=_natural)


def shards_of(bags: Sequence[Bag]) -> list[ShardView]:
    """Every shard of the bags, in rank order; an error if a bag holds none or two hold the same one."""
    found: list[tuple[list[Any], int, ShardView]] = []
    where: dict[str, Path] = {}
    for k, bag in enumerate(bags):
        names = namespaces(bag)
        if not names:
            raise BagError(f"{bag.path} has no {STATE} topic under any namespace; it is not a rollout shard")
        for ns in names:
            if ns and ns in where:
                raise BagError(
                    f"namespace {ns!r} is in both {where[ns]} and {bag.path}: shards must have namespaces of their own"
                )
            where[ns] = bag.path
            found.append((_natural(ns), k, ShardView(bag, ns)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [view for _, _, view in found]
