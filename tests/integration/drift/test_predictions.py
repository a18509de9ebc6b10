"""Prediction drift and the label-free performance estimate, from `predictions` alone."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from shared.contracts import Prediction
from shared.contracts.predictions import ClassifierOutput
from shared.topics import PREDICTIONS
from tests.integration.drift.conftest import MODEL
from tests.integration.drift.support import T0
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka]


def predictions(
    count: int, *, high_share: float, confidence: float, seed: int, start: int = 0
) -> list[Prediction]:
    """Answers of version 1 in production: `high_share` of them "high", each with the given
    probability of its predicted class."""
    rng = np.random.default_rng(seed)
    answers = []
    for index in range(count):
        label = "high" if rng.random() < high_share else "low"
        other = "low" if label == "high" else "high"
        answers.append(
            Prediction(
                request_id=f"p-{start + index}-{uuid.uuid4().hex[:6]}",
                model=MODEL,
                version=1,
                variant="production",
                status="ok",
                output=ClassifierOutput(
                    label=label, probabilities={label: confidence, other: 1 - confidence}
                ),
                latency_ms=3.0,
                created_at=T0 + timedelta(seconds=start + index),
            )
        )
    return answers


def measured_predictions(harness: Any) -> int:
    record = harness.service.view.get(MODEL, 1)
    if record is None:
        return 0
    performance = record.state["monitor"].get("performance", {}).get("production")
    return int(performance["predictions"]) if performance else 0


async def test_shifted_answers_and_falling_confidence_open_prediction_and_performance_episodes(
    drift_factory: Any,
) -> None:
    steady = predictions(6000, high_share=0.5, confidence=0.92, seed=1)
    shifted = predictions(3000, high_share=0.85, confidence=0.62, seed=2, start=6000)
    async with drift_factory() as harness:
        await harness.publish(PREDICTIONS, steady)

        async def steady_measured() -> bool:
            return measured_predictions(harness) >= len(steady)

        await eventually(steady_measured, timeout=60, what="the steady answers measured")
        assert await harness.alerts(settle_seconds=0.5) == []
        await harness.publish(PREDICTIONS, shifted)

        async def all_measured() -> bool:
            return measured_predictions(harness) >= len(steady) + len(shifted)

        await eventually(all_measured, timeout=60, what="every answer measured")
        alerts = await harness.alerts()
    opened = {(a.kind, a.variant): a for a in alerts if a.status == "open"}
    assert set(opened) == {("prediction", None), ("performance", "production")}
    prediction = opened[("prediction", None)]
    assert prediction.reference["frequencies"]["high"] == pytest.approx(0.5, abs=0.1)
    assert prediction.current["frequencies"]["high"] > 0.6
    performance = opened[("performance", "production")]
    assert performance.method == "cbpe"
