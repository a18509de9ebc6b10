"""The expiring cache and the choice of the version a request is validated against."""

from __future__ import annotations

import pytest

from services.gateway.domain.serving import NoProductionVersion, version_to_validate
from shared.contracts import DeploymentState
from shared.expiring_cache import ExpiringCache


def test_entries_live_for_their_ttl() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache()
    cache.put("a", 1, now=10.0, ttl=5.0)

    assert cache.get("a", 14.9) == 1
    assert cache.get("a", 15.0) is None
    assert len(cache) == 0


def test_zero_ttl_stores_nothing_and_drops_an_old_value() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache()
    cache.put("a", 1, now=0.0, ttl=60.0)
    cache.put("a", 2, now=1.0, ttl=0.0)

    assert cache.get("a", 1.0) is None


def test_the_oldest_entries_go_when_full() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache(max_entries=2)
    for index, key in enumerate("abc"):
        cache.put(key, index, now=0.0, ttl=60.0)

    assert cache.get("a", 0.0) is None
    assert (cache.get("b", 0.0), cache.get("c", 0.0)) == (1, 2)


def test_discard_where_drops_matching_keys_only() -> None:
    cache: ExpiringCache[tuple[str, int], str] = ExpiringCache()
    for key in [("iris", 1), ("iris", 2), ("churn", 1)]:
        cache.put(key, "signature", now=0.0, ttl=60.0)

    assert cache.discard_where(lambda key: key[0] == "iris") == 2
    assert cache.get(("churn", 1), 0.0) == "signature"


def test_a_pinned_version_wins_over_production() -> None:
    deployment = DeploymentState(production=2, canary=3, canary_weight=0.1)

    assert version_to_validate(deployment, pinned=1) == 1
    assert version_to_validate(deployment, pinned=None) == 2


def test_without_production_only_a_pinned_version_can_be_validated() -> None:
    empty = DeploymentState()

    assert version_to_validate(empty, pinned=4) == 4
    with pytest.raises(NoProductionVersion):
        version_to_validate(empty, pinned=None)
