"""The LRU result cache: bounded, least recently used out first, honest counters."""

from __future__ import annotations

import pytest

from services.inference.domain.result_cache import ResultCache, canonical_input
from services.inference.domain.servable import ServableModel
from shared.signature import FeatureSpec, InputSignature
from tests.unit.inference.support import IRIS_SETOSA, servable


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


def test_row_keys_are_equal_only_for_inputs_the_model_sees_as_equal() -> None:
    model = servable("iris", 1)
    inputs = [
        IRIS_SETOSA,
        dict(reversed(IRIS_SETOSA.items())),  # same values, other key order
        IRIS_SETOSA | {"petal_width": 0.2000001},
        {"sepal_length": 6, "sepal_width": 3, "petal_length": 4, "petal_width": 1},
        {"sepal_length": 6.0, "sepal_width": 3.0, "petal_length": 4.0, "petal_width": 1.0},
    ]
    keys = model.row_keys(inputs, model.matrix(inputs))
    assert keys[0] == keys[1]
    assert keys[0] != keys[2]
    assert keys[3] == keys[4]  # the model sees 6 and 6.0 alike
    assert len(set(keys)) == 3


def test_row_keys_of_non_numeric_signatures_are_canonical_json() -> None:
    signature = InputSignature(
        features=[
            FeatureSpec(name="plan", kind="category", categories=["basic", "pro"]),
            FeatureSpec(name="age", kind="integer", minimum=18, maximum=90),
        ],
        target="churned",
        task="classification",
        classes=["no", "yes"],
    )
    model = ServableModel.wrap(model="m", version=1, signature=signature, estimator=object())
    inputs = [{"plan": "pro", "age": 30}, {"age": 30, "plan": "pro"}, {"plan": "basic", "age": 30}]
    keys = model.row_keys(inputs, model.matrix(inputs))
    assert keys == [
        canonical_input(inputs[0]),
        canonical_input(inputs[0]),
        canonical_input(inputs[2]),
    ]
