"""A least-recently-used map bounded by entry count and by total weight (bytes).

Whatever a worker remembers per request value (loaded versions, failed loads, unknown
names) lives in one of these, so requests naming random things cannot grow its memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _weightless(_value: object) -> int:
    return 0


class BoundedLru(Generic[K, V]):
    """Entries oldest-used first; beyond `max_entries` or `max_weight` the oldest go.

    Eviction skips the keys it is told to keep, so the map may stay over its bounds until
    `evict` is called with fewer of them.
    """

    def __init__(
        self,
        *,
        max_entries: int,
        max_weight: int | None = None,
        weigh: Callable[[V], int] = _weightless,
    ) -> None:
        if max_entries < 0 or (max_weight is not None and max_weight < 0):
            raise ValueError("bounds must be zero or positive")
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._weigh = weigh
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}
        self.weight = 0
        """Total weight of the entries held."""
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def get(self, key: K) -> V | None:
        """The value, marked most recently used; None when absent."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def peek(self, key: K) -> V | None:
        """The value without marking it used."""
        return self._entries.get(key)

    def put(self, key: K, value: V, *, evict: bool = True) -> list[K]:
        """Store `value` as the most recently used; returns the keys evicted to make room.

        The new entry is never evicted by its own `put`, even when it alone is over a bound.
        With `evict=False` nothing is: the owner calls `evict` when it can let entries go.
        """
        self.pop(key)
        weight = self._weigh(value)
        self._entries[key] = value
        self._weights[key] = weight
        self.weight += weight
        return self._evict((), also_keep=key) if evict else []

    def pop(self, key: K) -> V | None:
        value = self._entries.pop(key, None)
        if value is not None:
            self.weight -= self._weights.pop(key)
        return value

    def evict(self, *, keep: Collection[K] = ()) -> list[K]:
        """Drop the least recently used entries not in `keep` until within bounds."""
        return self._evict(keep, also_keep=None)

    def _over(self) -> bool:
        return len(self._entries) > self.max_entries or (
            self.max_weight is not None and self.weight > self.max_weight
        )

    def _evict(self, keep: Collection[K], *, also_keep: K | None) -> list[K]:
        evicted: list[K] = []
        if not self._over():
            return evicted
        for key in list(self._entries):
            if key in keep or key == also_keep:
                continue
            self.pop(key)
            evicted.append(key)
            if not self._over():
                break
        self.evictions += len(evicted)
        return evicted
