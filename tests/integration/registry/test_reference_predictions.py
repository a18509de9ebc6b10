"""A version's profile carries what it predicted on its own training rows, for prediction drift."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier

from shared.model_files import dump_model
from shared.profile import CONFIDENCE_BIN_EDGES, numeric_profile
from tests.integration.registry.conftest import Registry

pytestmark = [pytest.mark.kafka]
ROWS = 1500  # more than the 256 rows the trial once took, fewer than a worker's batch


def _csv(features: NDArray[np.float64], target: list[object]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*(f"x{index}" for index in range(features.shape[1])), "target"])
    for row, label in zip(features.tolist(), target, strict=True):
        writer.writerow([*row, label])
    return buffer.getvalue().encode()


def _features(seed: int) -> NDArray[np.float64]:
    return np.random.default_rng(seed).normal(size=(ROWS, 3))


def _labels(features: NDArray[np.float64]) -> NDArray[np.int64]:
    """Three overlapping classes, so the model is unsure of some rows."""
    noisy = features[:, 0] + 0.5 * features[:, 1] + np.random.default_rng(1).normal(size=ROWS)
    return np.digitize(noisy, [-0.8, 0.8]).astype(np.int64)


def _profile(registry: Registry, model: str) -> dict:  # type: ignore[type-arg]
    response = registry.call("reader", "GET", f"/v1/models/{model}/versions/1/profile")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_classifier_profile_has_its_predicted_class_shares_and_confidence(
    registry: Registry,
) -> None:
    features = _features(seed=7)
    labels = _labels(features)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    registry.create_model("churn")

    response = registry.register("churn", dump_model(model), _csv(features, labels.tolist()))

    assert response.status_code == 201, response.text
    profile = _profile(registry, "churn")
    predictions = profile["predictions"]
    assert predictions["kind"] == "classes"
    assert predictions["rows"] == ROWS
    predicted, counts = np.unique(model.predict(features), return_counts=True)
    assert predictions["frequencies"] == pytest.approx(
        {str(label): count / ROWS for label, count in zip(predicted, counts, strict=True)}
    )
    assert set(predictions["frequencies"]) <= set(profile["target"]["frequencies"])
    highest = model.predict_proba(features).max(axis=1)
    confidence = predictions["confidence"]
    assert confidence["mean"] == pytest.approx(highest.mean())
    assert confidence["bin_edges"] == CONFIDENCE_BIN_EDGES
    by_hand = np.bincount(
        np.searchsorted(CONFIDENCE_BIN_EDGES, highest, side="right"), minlength=20
    )
    assert confidence["bin_fractions"] == pytest.approx((by_hand / ROWS).tolist())


def test_a_classifier_without_probabilities_has_no_confidence(registry: Registry) -> None:
    features = _features(seed=8)
    labels = _labels(features)
    model = RidgeClassifier().fit(features, labels)
    registry.create_model("ridge")

    response = registry.register("ridge", dump_model(model), _csv(features, labels.tolist()))

    assert response.status_code == 201, response.text
    predictions = _profile(registry, "ridge")["predictions"]
    assert predictions["confidence"] is None
    predicted, counts = np.unique(model.predict(features), return_counts=True)
    assert predictions["frequencies"] == pytest.approx(
        {str(label): count / ROWS for label, count in zip(predicted, counts, strict=True)}
    )


def test_a_regressor_profile_has_a_numeric_profile_of_its_predictions(registry: Registry) -> None:
    features = _features(seed=9)
    target = features @ [2.0, -1.0, 0.5] + np.random.default_rng(2).normal(size=ROWS)
    model = LinearRegression().fit(features, target)
    registry.create_model("price", task="regression")

    response = registry.register("price", dump_model(model), _csv(features, target.tolist()))

    assert response.status_code == 201, response.text
    predictions = _profile(registry, "price")["predictions"]
    assert predictions["kind"] == "scores"
    assert predictions["rows"] == ROWS
    values = predictions["values"]
    by_hand = numeric_profile(model.predict(features).tolist())
    assert (values["count"], values["missing"]) == (ROWS, 0)
    assert (values["mean"], values["std"]) == pytest.approx((by_hand.mean, by_hand.std))
    assert (values["min"], values["max"]) == pytest.approx((by_hand.min, by_hand.max))
    assert values["quantiles"] == pytest.approx(by_hand.quantiles)
    assert values["bin_edges"] == pytest.approx(by_hand.bin_edges)
    assert values["bin_fractions"] == pytest.approx(by_hand.bin_fractions)
