"""A bounded LRU cache of model outputs for repeated inputs."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

import orjson

from shared.contracts.base import FeatureValue

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def canonical_input(inputs: Mapping[str, FeatureValue]) -> bytes:
    """The same bytes for the same inputs whatever the key order, so equal inputs share a slot."""
    return orjson.dumps(dict(inputs), option=orjson.OPT_SORT_KEYS)


class ResultCache(Generic[K, V]):
    """Least-recently-used cache with hit and miss counters; capacity 0 stores nothing."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be zero or positive")
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[K, V] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def hit_rate(self) -> float:
        """Hits over lookups; 0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def get(self, key: K) -> V | None:
        """The cached value, marked most recently used; counts a hit or a miss."""
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Store `value`, evicting the least recently used entry when full."""
        if self.capacity == 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
