"""The sketcher's fast reading of a batch's numeric features agrees with the reference
reading value by value, whatever the batch holds."""

from __future__ import annotations

import numpy as np
import pytest

from services.drift.domain.sketching import numeric_matrix, numeric_matrix_by_value

NAMES = ["a", "b", "c"]


def batch(seed: int, odd: list[object]) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = [
        dict(zip(NAMES, row, strict=True)) for row in rng.standard_normal((50, 3)).tolist()
    ]
    for index, value in enumerate(odd):
        rows[7 * index + 3]["b"] = value
    return rows


@pytest.mark.parametrize(
    "odd",
    [
        [],
        [3, -2, 10**6],
        [None],
        ["1.5"],
        [True, False],
        [float("nan"), float("inf")],
    ],
    ids=["floats", "ints", "none", "text", "booleans", "nan-and-inf"],
)
def test_the_fast_reading_equals_the_reference(odd: list[object]) -> None:
    rows = batch(1, odd)

    fast = numeric_matrix(rows, NAMES)

    np.testing.assert_array_equal(fast, numeric_matrix_by_value(rows, NAMES))
    assert fast.shape == (50, 3) and fast.dtype == np.float64


def test_text_and_booleans_are_not_numbers() -> None:
    rows = [{"a": "1.5", "b": True}, {"a": 2, "b": 0.5}]

    np.testing.assert_array_equal(numeric_matrix(rows, ["a", "b"]), [[np.nan, np.nan], [2.0, 0.5]])


def test_an_absent_feature_is_nan_and_one_or_no_column_works() -> None:
    rows = [{"a": 1.0}, {"b": 2.0}]

    np.testing.assert_array_equal(numeric_matrix(rows, ["a"]), [[1.0], [np.nan]])
    np.testing.assert_array_equal(numeric_matrix(rows[:1], ["a"]), [[1.0]])
    assert numeric_matrix(rows, []).shape == (2, 0)
    assert numeric_matrix([], NAMES).shape == (0, 3)
