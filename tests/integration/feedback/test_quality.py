"""Live quality per version and variant equals a hand computation of a known stream."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devtools.live_registry import LiveRegistry
from tests.integration.feedback.support import IRIS, classified, feedback

pytestmark = [pytest.mark.kafka]

PRODUCTION = ["setosa", "setosa", "versicolor", "virginica", "setosa", "versicolor",
              "virginica", "virginica", "setosa", "setosa", "versicolor", "setosa"]  # fmt: skip
SHADOW = ["setosa", "versicolor", "versicolor", "virginica", "virginica", "versicolor",
          "setosa", "virginica", "versicolor", "setosa", "virginica", "setosa"]  # fmt: skip
TRUTH = ["virginica", "setosa", "versicolor", "setosa", "setosa", "versicolor",
         "virginica", "setosa", "setosa"]  # fmt: skip
"""Labels of requests 0..8; request 10 is only rated down; 9 and 11 get nothing."""
WINDOW = 6 * 3600.0


def wilson(correct: int, total: int) -> tuple[float, float]:
    z, p = 1.96, correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(p * (1 - p) / total + z * z / (4 * total**2))
    return centre - half, centre + half


async def test_live_accuracy_matches_a_hand_computation_for_production_and_shadow(
    feedback_factory: Callable[..., Any], registry: LiveRegistry
) -> None:
    async with feedback_factory(registry) as harness:
        for i, (served, shadow) in enumerate(zip(PRODUCTION, SHADOW, strict=True)):
            await harness.served(f"r-{i}", served)
            await harness.send_prediction(classified(f"r-{i}", shadow, version=2, variant="shadow"))
        # r-0: a user says setosa, then a reviewer says virginica: the reviewer's stands.
        await harness.send_feedback(feedback("r-0", label="setosa", authority="user", seconds=50))
        for i, truth in enumerate(TRUTH):
            sent = feedback(f"r-{i}", label=truth, seconds=60 + i, feedback_id=f"f-{i}")
            if i == 0:
                sent = sent.model_copy(update={"authority": "reviewer", "source": "ann"})
            await harness.send_feedback(sent)
        await harness.send_feedback(feedback("r-1", label="setosa", seconds=61, feedback_id="f-1"))
        await harness.send_feedback(feedback("r-10", rating="down", seconds=70))

        await harness.joined(11)
        await harness.labels(20)
        async with harness.http(registry.keys["reader"]) as http:
            response = await http.get(
                "/v1/quality", params={"model": "iris", "window_seconds": WINDOW}
            )
        async with harness.http(registry.keys["client"]) as http:
            refused = await http.get("/v1/quality")

    assert response.status_code == 200, response.text
    assert refused.status_code == 403
    figures = {(row["version"], row["variant"]): row for row in response.json()}
    production, shadow = figures[(1, "production")], figures[(2, "shadow")]

    right = sum(p == t for p, t in zip(PRODUCTION, TRUTH, strict=False))
    assert production["predictions"] == 12 and production["labelled"] == 10
    assert production["coverage"] == pytest.approx(10 / 12)
    # The "down" on r-10 says its prediction was wrong: judged, and not right.
    assert production["accuracy"] == pytest.approx(right / 10)
    low, high = wilson(right, 10)
    assert production["accuracy_low"] == pytest.approx(low, abs=1e-4)
    assert production["accuracy_high"] == pytest.approx(high, abs=1e-4)
    assert production["rating_ratio"] == 0.0
    assert production["conflicts"] == 1

    shadow_right = sum(s == t for s, t in zip(SHADOW, TRUTH, strict=False))
    # The shadow said something else for r-10: a "down" among three classes cannot judge it.
    assert shadow["labelled"] == 10 and shadow["accuracy"] == pytest.approx(shadow_right / 9)
    assert shadow["conflicts"] == 1 and shadow["rating_ratio"] is None

    delays = [60 + i - 1 for i in range(9)] + [70 - 1]  # feedback time minus prediction time
    assert production["delay_p50_seconds"] == pytest.approx(statistics.median(delays))
    assert set(IRIS) >= set(PRODUCTION)


async def test_live_quality_is_published_on_its_topic_and_exported_to_prometheus(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory(quality_publish_seconds=0.3, feedback_health_port=0) as harness:
        for i, (served, truth) in enumerate(zip(PRODUCTION[:4], TRUTH[:4], strict=True)):
            await harness.served(f"q-{i}", served)
            await harness.send_feedback(feedback(f"q-{i}", label=truth))
        await harness.joined(4)
        published = await harness.quality(lambda record: record.labelled == 4)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{harness.service.health_port}"
        ) as http:
            metrics = (await http.get("/metrics")).text

    right = sum(p == t for p, t in zip(PRODUCTION[:4], TRUTH[:4], strict=True))
    assert (published.model, published.version, published.variant) == ("iris", 1, "production")
    assert published.accuracy == pytest.approx(right / 4) and published.predictions == 4
    gauge = 'modelbus_feedback_live_accuracy{model="iris",variant="production",version="1"}'
    assert f"{gauge} {right / 4}" in metrics
