"""Hostile records cost the join one small output each; the partitions move on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from shared.contracts import PredictionRequest
from shared.topics import FEEDBACK
from tests.integration.feedback.support import T0, classified, feedback, latest_per_variant

pytestmark = [pytest.mark.kafka]


async def test_oversized_inputs_and_labels_get_small_outputs_and_the_join_moves_on(
    feedback_factory: Callable[..., Any],
) -> None:
    huge = "x" * 1_000_000  # a request Kafka takes; its label would be over the limit
    async with feedback_factory() as harness:
        await harness.send_request(
            PredictionRequest(request_id="big", model="iris", inputs={"note": huge}, created_at=T0)
        )
        await harness.send_prediction(classified("big", "setosa"))
        await harness.send_feedback(feedback("big", label="setosa"))
        await harness.served("small", "virginica")
        await harness.send_feedback(feedback("small", label=huge, feedback_id="huge-label"))
        await harness.send_feedback(feedback("small", label="virginica"))

        labels = latest_per_variant(await harness.labels(2))
        letters = await harness.dead_letters(1)

    assert labels[("big", "production")].inputs == {}  # the store keeps them for export
    assert labels[("small", "production")].label == "virginica"
    assert letters[0].error_code == "refused" and len(letters[0].error_message) < 2000
    assert "value truncated" in letters[0].error_message


async def test_feedback_with_an_overlong_id_is_dead_lettered_and_the_next_joins(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory() as harness:
        await harness.served("r-1", "setosa")
        record = feedback("r-1", label="setosa").model_dump(mode="json")
        record["feedback_id"] = "f" * 500  # longer than the store keeps: refused by contract
        await harness.publisher._producer.send_and_wait(
            harness.settings.topic(FEEDBACK.name), orjson.dumps(record), key=b"r-1"
        )
        await harness.send_feedback(feedback("r-1", label="setosa", feedback_id="fine"))

        labels = await harness.labels(1)
        letters = await harness.dead_letters(1)

    assert labels[0].feedback_id == "fine"
    assert letters[0].error_code == "schema_violation"
    assert "feedback_id" in letters[0].error_message
