"""The bounded LRU map: oldest-used out first, by count and by weight, sparing kept keys."""

from __future__ import annotations

import pytest

from services.inference.domain.bounded import BoundedLru


def sized(max_entries: int = 100, max_weight: int | None = None) -> BoundedLru[str, int]:
    """Values are their own weight."""
    return BoundedLru(max_entries=max_entries, max_weight=max_weight, weigh=lambda value: value)


def test_the_least_recently_used_entry_goes_first_beyond_the_count() -> None:
    lru = sized(max_entries=2)
    assert lru.put("a", 1) == []
    lru.put("b", 1)
    assert lru.get("a") == 1  # "a" is now the most recently used
    assert lru.put("c", 1) == ["b"]
    assert list(lru) == ["a", "c"] and lru.evictions == 1


def test_peek_does_not_count_as_a_use() -> None:
    lru = sized(max_entries=2)
    lru.put("a", 1)
    lru.put("b", 1)
    assert lru.peek("a") == 1
    assert lru.put("c", 1) == ["a"]


def test_weight_evicts_as_many_old_entries_as_it_takes() -> None:
    lru = sized(max_weight=10)
    for key, weight in (("a", 4), ("b", 4), ("c", 2)):
        lru.put(key, weight)
    assert lru.weight == 10
    assert lru.put("d", 7) == ["a", "b"]
    assert list(lru) == ["c", "d"] and lru.weight == 9


def test_a_new_entry_heavier_than_the_bound_stays_alone() -> None:
    lru = sized(max_weight=10)
    lru.put("a", 3)
    assert lru.put("huge", 50) == ["a"]
    assert list(lru) == ["huge"] and lru.weight == 50


def test_replacing_a_value_replaces_its_weight() -> None:
    lru = sized(max_weight=10)
    lru.put("a", 8)
    lru.put("a", 2)
    assert lru.weight == 2 and len(lru) == 1
    assert lru.pop("a") == 2 and lru.weight == 0 and lru.pop("a") is None


def test_kept_keys_are_never_evicted_even_over_the_bounds() -> None:
    lru = sized(max_entries=2)
    for key in "abcd":
        lru.put(key, 1, evict=False)
    assert len(lru) == 4
    assert lru.evict(keep={"a", "b", "c"}) == ["d"]
    assert list(lru) == ["a", "b", "c"]  # still over: everything left is kept
    assert lru.evict(keep={"c"}) == ["a"]
    assert list(lru) == ["b", "c"]


def test_a_thousand_random_keys_leave_only_the_bound() -> None:
    lru: BoundedLru[int, str] = BoundedLru(max_entries=50)
    for key in range(1000):
        lru.put(key, "refused")
    assert len(lru) == 50 and list(lru) == list(range(950, 1000))


def test_negative_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="zero or positive"):
        BoundedLru(max_entries=-1)
