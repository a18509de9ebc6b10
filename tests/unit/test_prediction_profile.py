"""Reference predictions: what a version predicted on its training rows, checked as untrusted."""

import json
import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from shared.profile import (
    CONFIDENCE_BIN_EDGES,
    ClassPredictionProfile,
    ConfidenceProfile,
    ReferenceProfile,
    ScorePredictionProfile,
    build_profile,
    class_prediction_profile,
    confidence_profile,
    score_prediction_profile,
)
from shared.signature import MAX_CATEGORIES, infer_signature
from shared.tabular import parse_csv


def test_class_predictions_are_shares_of_text_labels_with_a_confidence_histogram() -> None:
    labels = [1, 0, True, 1.0]
    probabilities = [[0.2, 0.8], [0.95, 0.05], [0.4, 0.6], [0.0, 1.0]]

    profile = class_prediction_profile(np.array(labels, dtype=object), probabilities)

    assert profile.rows == 4
    assert profile.frequencies == {"0": 0.25, "1": 0.5, "true": 0.25}
    assert profile.confidence is not None
    assert profile.confidence.mean == pytest.approx((0.8 + 0.95 + 0.6 + 1.0) / 4)
    fractions = dict(
        zip([0.0, *CONFIDENCE_BIN_EDGES], profile.confidence.bin_fractions, strict=True)
    )
    assert {low: share for low, share in fractions.items() if share} == {
        0.6: 0.25,
        0.8: 0.25,
        0.95: 0.5,  # 0.95 and 1.0 share the top bin
    }


def test_without_probabilities_the_confidence_is_absent() -> None:
    assert class_prediction_profile(["a", "b"]).confidence is None


def test_score_predictions_are_a_numeric_profile() -> None:
    profile = score_prediction_profile([1.0, 2.0, 3.0, math.nan])

    assert (profile.rows, profile.values.count, profile.values.missing) == (4, 3, 1)
    assert profile.values.mean == 2.0


def test_a_profile_stored_before_reference_predictions_still_loads() -> None:
    data = parse_csv(b"x,y\n1,a\n2,b\n3,a\n")
    stored = build_profile(data, infer_signature(data, target="y", task="classification"))
    old = stored.model_dump(mode="json")
    del old["predictions"]

    assert ReferenceProfile.model_validate(old).predictions is None
    with_predictions = stored.model_copy(update={"predictions": class_prediction_profile(["a"])})
    restored = ReferenceProfile.model_validate_json(with_predictions.model_dump_json())
    assert isinstance(restored.predictions, ClassPredictionProfile)


def _classes(**edit: Any) -> dict[str, Any]:
    return class_prediction_profile(["a", "b"], [[0.9, 0.1], [0.3, 0.7]]).model_dump() | edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"frequencies": {"a": 0.5, "b": 0.4}}, "must sum to 1"),
        ({"frequencies": {"a": 1.2, "b": -0.2}}, r"must each lie in \[0, 1\]"),
        ({"frequencies": {"a": math.inf}}, "finite number"),
        ({"frequencies": {str(i): 1 / 1001 for i in range(MAX_CATEGORIES + 1)}}, "at most 1000"),
        ({"rows": 0}, "greater than or equal to 1"),
    ],
)
def test_class_predictions_from_a_child_are_checked(edit: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ClassPredictionProfile.model_validate(_classes(**edit))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"bin_edges": [0.5]}, "fixed 0.05-wide bins"),
        ({"bin_fractions": [0.5] * 20}, "must sum to 1"),
        ({"bin_fractions": [1.0] + [0.0] * 19, "mean": 0.5}, "does not fit its histogram"),
        ({"bin_fractions": [1.0]}, "one more entry"),
        ({"mean": 1.5}, "less than or equal to 1"),
    ],
)
def test_confidence_from_a_child_is_checked(edit: dict[str, Any], message: str) -> None:
    valid = confidence_profile([[0.9, 0.1], [0.3, 0.7]]).model_dump()

    with pytest.raises(ValidationError, match=message):
        ConfidenceProfile.model_validate(valid | edit)


def test_confidence_needs_probabilities() -> None:
    with pytest.raises(ValueError, match="finite and within"):
        confidence_profile([[0.5, math.nan]])
    with pytest.raises(ValueError, match="rows x classes"):
        confidence_profile([0.5, 0.5])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"rows": 5}, "add up to the rows"),
        ({"bin_fractions": [0.2] * 10}, "must sum to 1"),
        ({"quantiles": {"p50": 2.0}}, "quantiles must be keyed"),
        ({"mean": 9.0}, "between min and max"),
        ({"min": 2.5}, "rise from min to max"),
        ({"bin_edges": [float(i) for i in range(10)], "bin_fractions": [1 / 11] * 11}, "at most"),
    ],
)
def test_score_predictions_from_a_child_are_checked(edit: dict[str, Any], message: str) -> None:
    valid = score_prediction_profile([1.0, 2.0, 3.0, 4.0]).model_dump()
    rows = edit.pop("rows", valid["rows"])
    broken = valid | {"rows": rows, "values": valid["values"] | edit}

    with pytest.raises(ValidationError, match=message):
        ScorePredictionProfile.model_validate(broken)


def test_reference_predictions_are_plain_json() -> None:
    profile = class_prediction_profile(["a"], [[1.0]])

    assert json.loads(profile.model_dump_json())["confidence"]["mean"] == 1.0
