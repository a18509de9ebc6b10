"""The vectorised batch validator finds exactly what InputSignature.check finds."""

from __future__ import annotations

import math
import random

import pytest

from services.inference.domain.validation import BatchValidator
from shared.metrics import Histogram
from shared.signature import FeatureSpec, InputSignature

NUMERIC = InputSignature(
    features=[
        FeatureSpec(name="age", kind="integer", minimum=18, maximum=90),
        FeatureSpec(name="income", kind="number", minimum=0.0, maximum=1000.0),
        FeatureSpec(name="score", kind="number", minimum=-1.0, maximum=1.0, nullable=True),
    ],
    target="churned",
    task="classification",
    classes=["no", "yes"],
)
MIXED = InputSignature(
    features=[
        FeatureSpec(name="age", kind="integer", minimum=18, maximum=90),
        FeatureSpec(name="plan", kind="category", categories=["basic", "pro"]),
        FeatureSpec(name="active", kind="boolean"),
    ],
    target="churned",
    task="classification",
    classes=["no", "yes"],
)
ODD_VALUES: list[object] = [
    0, 17, 18, 90, 91, 45.0, 45.5, 2.0**60, -(2**60), True, False, None, "42",
    math.nan, math.inf, -math.inf, 500.0, 1000.0, 1000.1, 1099.9, 1100.1, -0.1, -101.0, 0.5,
]  # fmt: skip


def random_inputs(rng: random.Random, signature: InputSignature) -> dict[str, object]:
    inputs: dict[str, object] = {}
    for spec in signature.features:
        if rng.random() < 0.05:
            continue  # missing feature
        if spec.kind == "category":
            inputs[spec.name] = rng.choice(["basic", "pro", "gold", 3, None])
        elif spec.kind == "boolean":
            inputs[spec.name] = rng.choice([True, False, 1, None])
        elif rng.random() < 0.6:
            low, high = spec.minimum or 0.0, spec.maximum or 1.0
            value = rng.uniform(low, high)
            inputs[spec.name] = round(value) if spec.kind == "integer" else value
        else:
            inputs[spec.name] = rng.choice(ODD_VALUES)
    if rng.random() < 0.05:
        inputs["unexpected"] = 1.0
    return inputs


@pytest.mark.parametrize("signature", [NUMERIC, MIXED], ids=["numeric", "mixed"])
@pytest.mark.parametrize("tolerance", [0.0, 0.1])
def test_same_problems_as_check(signature: InputSignature, tolerance: float) -> None:
    rng = random.Random(7)
    batch = [random_inputs(rng, signature) for _ in range(3000)]
    found = BatchValidator(signature).problems(batch, range_tolerance=tolerance)  # type: ignore[arg-type]
    expected = [signature.check(inputs, range_tolerance=tolerance) for inputs in batch]  # type: ignore[arg-type]
    assert found == expected
    assert any(found) and not all(found)


def test_tolerance_widens_the_accepted_range() -> None:
    validator = BatchValidator(NUMERIC)
    inputs = {"age": 95, "income": 10.0, "score": 0.0}
    assert validator.problems([inputs], range_tolerance=0.0)[0][0].code == "out_of_range"
    assert validator.problems([inputs], range_tolerance=0.1) == [[]]


def test_histogram_observe_many_matches_observe() -> None:
    values = [0.0005, 0.001, 0.003, 0.05, 0.2, 7.0, 100.0, 0.001]
    one_by_one, at_once = Histogram([0.001, 0.01, 0.1, 1.0]), Histogram([0.001, 0.01, 0.1, 1.0])
    for value in values:
        one_by_one.observe(value)
    at_once.observe_many(values)
    assert at_once.counts == one_by_one.counts
    assert at_once.count == one_by_one.count == len(values)
    assert at_once.sum == pytest.approx(one_by_one.sum)
