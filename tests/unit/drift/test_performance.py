"""The label-free performance estimate: calibrated confidence per bin, merged sketches, a
drop signalled before labels arrive, and hostile input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from services.drift.domain.performance import (
    BINS,
    CalibrationSketch,
    ConfidenceSketch,
    PerformanceSettings,
    PerformanceState,
    confidence_of,
    estimate,
    sketch_calibration,
    sketch_confidences,
    sketch_predictions,
)
from shared.contracts.predictions import ClassifierOutput, Prediction

PRIOR = PerformanceSettings().prior_strength


def calibrated(seed: int, size: int, low: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A classifier whose confidence is its probability of being right."""
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(low, 1.0, size)
    return confidence, rng.random(size) < confidence


def test_the_estimate_matches_true_accuracy_for_a_calibrated_classifier() -> None:
    confidence, correct = calibrated(1, 20_000)
    found, error = estimate(CalibrationSketch(), sketch_confidences(confidence), PRIOR)
    realised_error = math.sqrt(np.mean(confidence * (1 - confidence)) / confidence.size)
    assert abs(found - correct.mean()) < 4 * realised_error
    assert 0 < error < 0.01


def test_labels_correct_an_overconfident_classifier() -> None:
    """Right only (confidence - 0.15) of the time: raw confidence overestimates by 0.15,
    the calibration learnt from 5,000 labels brings the estimate to the truth."""
    rng = np.random.default_rng(2)
    confidence = rng.uniform(0.6, 1.0, 30_000)
    correct = rng.random(confidence.size) < confidence - 0.15
    window = sketch_confidences(confidence[5000:])
    raw, _ = estimate(CalibrationSketch(), window, PRIOR)
    learnt, _ = estimate(sketch_calibration(confidence[:5000], correct[:5000]), window, PRIOR)
    truth = correct[5000:].mean()
    assert raw - truth > 0.12
    assert abs(learnt - truth) < 0.015


def test_sketches_merge_like_the_concatenated_batch() -> None:
    confidence, correct = calibrated(3, 3000)
    halves = sketch_confidences(confidence[:1234]).plus(sketch_confidences(confidence[1234:]))
    whole = sketch_confidences(confidence)
    assert halves.counts == whole.counts
    assert np.allclose(halves.sums, whole.sums)
    calibration = sketch_calibration(confidence[:100], correct[:100]).plus(
        sketch_calibration(confidence[100:], correct[100:])
    )
    assert calibration.labelled == sketch_calibration(confidence, correct).labelled
    assert calibration.correct == sketch_calibration(confidence, correct).correct


def run_stream(state: PerformanceState, confidence: np.ndarray, batch: int = 250) -> list[bool]:
    firing = []
    for start in range(0, confidence.size, batch):
        for signal in state.apply(sketch_confidences(confidence[start : start + batch])):
            firing.append(signal.firing)
    return firing


def test_a_covariate_shift_that_lowers_confidence_is_signalled_without_labels() -> None:
    rng = np.random.default_rng(4)
    before = rng.uniform(0.6, 1.0, 15_000)
    after = rng.uniform(0.5, 0.85, 3000)
    state = PerformanceState.start(PerformanceSettings(), "production")
    firing = run_stream(state, np.concatenate([before, after]))
    assert not any(firing[:10]) and all(firing[10:])


def test_a_stationary_stream_is_not_signalled() -> None:
    confidence, _ = calibrated(5, 100_000)
    state = PerformanceState.start(PerformanceSettings(), "production")
    firing = run_stream(state, confidence, batch=500)
    assert len(firing) == 95 and not any(firing)


def test_a_json_round_trip_gives_identical_behaviour() -> None:
    rng = np.random.default_rng(6)
    confidence = np.concatenate([rng.uniform(0.6, 1.0, 8000), rng.uniform(0.5, 0.9, 4000)])
    original = PerformanceState.start(PerformanceSettings(), "canary")
    original.learn(sketch_calibration(confidence[:500], rng.random(500) < 0.8))
    run_stream(original, confidence[:6100])
    restored = PerformanceState.from_json(json.loads(json.dumps(original.to_json())))
    assert restored.to_json() == original.to_json()
    tail = confidence[6100:]
    first = [original.apply(sketch_confidences(tail[i : i + 300])) for i in range(0, 5900, 300)]
    again = [restored.apply(sketch_confidences(tail[i : i + 300])) for i in range(0, 5900, 300)]
    assert first == again and any(first)


def test_unusable_probabilities_are_counted_not_binned() -> None:
    sketch = sketch_confidences([0.9, math.nan, math.inf, -0.1, 1.5, 1.0, 0.0])
    assert sketch.total == 3 and sketch.unusable == 4
    assert sketch.counts[BINS - 1] == 1 and sketch.counts[18] == 1 and sketch.counts[0] == 1
    assert math.isnan(confidence_of(ClassifierOutput(label="a", probabilities={})))
    nan = ClassifierOutput(label="a", probabilities={"a": math.nan, "b": 0.2})
    assert math.isnan(confidence_of(nan))


def test_an_empty_batch_changes_nothing() -> None:
    state = PerformanceState.start(PerformanceSettings(), "production")
    before = state.to_json()
    assert state.apply(sketch_confidences([])) == []
    assert state.apply(sketch_confidences([math.nan, math.nan])) == []
    assert state.to_json()["reference"]["counts"] == before["reference"]["counts"]
    assert math.isnan(estimate(CalibrationSketch(), ConfidenceSketch(), PRIOR)[0])


def test_mismatched_or_malformed_sketches_are_refused() -> None:
    with pytest.raises(ValueError, match="one correctness flag per confidence"):
        sketch_calibration([0.5, 0.6], [True])
    with pytest.raises(ValueError, match="bins"):
        ConfidenceSketch.from_json({"counts": [1, 2], "sums": [0.5, 1.0]})


def test_unusable_settings_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="window must be at least 1"):
        PerformanceSettings(window=0)
    with pytest.raises(ValueError, match="prior_strength"):
        PerformanceSettings(prior_strength=0.0)


def test_predictions_are_sketched_per_variant_and_regressors_are_skipped() -> None:
    def answer(variant: str, probabilities: dict[str, float]) -> Prediction:
        return Prediction.model_validate(
            {
                "request_id": "r",
                "model": "iris",
                "version": 1,
                "variant": variant,
                "status": "ok",
                "output": {"label": "a", "probabilities": probabilities},
                "latency_ms": 1.0,
            }
        )

    regression = Prediction.model_validate(
        {
            "request_id": "r",
            "model": "iris",
            "version": 1,
            "variant": "production",
            "status": "ok",
            "output": {"value": 3.0},
            "latency_ms": 1.0,
        }
    )
    sketches = sketch_predictions(
        [answer("production", {"a": 0.9, "b": 0.1}), answer("canary", {"a": 0.55}), regression]
    )
    production = sketches[("iris", 1, "production")]
    assert production.total == 1 and production.counts[18] == 1
    assert sketches[("iris", 1, "canary")].counts[11] == 1
    assert len(sketches) == 2
