"""The LRU result cache: bounded, least recently used out first, honest counters."""

from __future__ import annotations

import pytest

from services.inference.domain.result_cache import ResultCache, canonical_input


def test_evicts_the_least_recently_used_entry() -> None:
    cache: ResultCache[str, int] = ResultCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert "b" not in cache
    assert cache.get("a") == 1
    assert cache.get("c") == 3
    assert len(cache) == 2


def test_put_refreshes_an_existing_entry() -> None:
    cache: ResultCache[str, int] = ResultCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    cache.put("c", 3)
    assert cache.get("a") == 10
    assert "b" not in cache


def test_counts_hits_misses_and_hit_rate() -> None:
    cache: ResultCache[str, int] = ResultCache(10)
    assert cache.hit_rate == 0.0
    assert cache.get("x") is None
    cache.put("x", 1)
    assert cache.get("x") == 1
    assert cache.get("x") == 1
    assert cache.get("y") is None
    assert (cache.hits, cache.misses) == (2, 2)
    assert cache.hit_rate == pytest.approx(0.5)


def test_capacity_zero_stores_nothing() -> None:
    cache: ResultCache[str, int] = ResultCache(0)
    cache.put("a", 1)
    assert not cache.enabled
    assert len(cache) == 0
    with pytest.raises(ValueError, match="capacity"):
        ResultCache(-1)


def test_canonical_input_ignores_key_order_but_not_values() -> None:
    assert canonical_input({"a": 1, "b": 2.5}) == canonical_input({"b": 2.5, "a": 1})
    assert canonical_input({"a": 1}) != canonical_input({"a": 1.5})
    assert canonical_input({"a": True}) != canonical_input({"a": 1})
