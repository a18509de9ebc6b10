"""Values the contracts let through but the store cannot keep: the join refuses them (a
dead letter for feedback, a skip for others' records) and the partitions move on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.topics import FEEDBACK, PREDICTIONS, REQUESTS
from tests.integration.feedback.support import classified, feedback, request

pytestmark = [pytest.mark.kafka]

HUGE = 10**30
"""A JSON integer past 64 bits: the contracts' ints take it, the store's columns cannot."""


async def _send_raw(harness: Any, spec: Any, record: dict[str, Any], key: str) -> None:
    await harness.publisher._producer.send_and_wait(
        harness.settings.topic(spec.name), json.dumps(record).encode(), key=key.encode()
    )


async def test_feedback_whose_label_is_a_huge_integer_is_dead_lettered(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory() as harness:
        await harness.served("r-1", "setosa")
        record = feedback("r-1", label="setosa", feedback_id="huge").model_dump(mode="json")
        record["label"] = HUGE
        await _send_raw(harness, FEEDBACK, record, "r-1")
        await harness.send_feedback(feedback("r-1", label="setosa", feedback_id="fine"))

        labels = await harness.labels(1, timeout=30)
        letters = await harness.dead_letters(1, timeout=30)

    assert labels[0].feedback_id == "fine"
    assert letters[0].error_code == "schema_violation"
    assert "label" in letters[0].error_message


async def test_feedback_with_a_nul_in_its_source_is_dead_lettered(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory() as harness:
        await harness.served("r-1", "setosa")
        record = feedback("r-1", label="setosa", feedback_id="nul").model_dump(mode="json")
        record["source"] = "app\x00"  # PostgreSQL text cannot hold a NUL
        await _send_raw(harness, FEEDBACK, record, "r-1")
        await harness.send_feedback(feedback("r-1", label="setosa", feedback_id="fine"))

        labels = await harness.labels(1, timeout=30)
        letters = await harness.dead_letters(1, timeout=30)

    assert labels[0].feedback_id == "fine"
    assert letters[0].error_code == "schema_violation"
    assert "source" in letters[0].error_message


async def test_a_request_with_a_huge_integer_input_is_skipped_and_the_next_joins(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory() as harness:
        record = request("bad").model_dump(mode="json")
        record["inputs"] = {"count": HUGE}
        await _send_raw(harness, REQUESTS, record, "bad")
        await harness.served("r-1", "setosa")
        await harness.send_feedback(feedback("r-1", label="setosa"))

        labels = await harness.labels(1, timeout=30)

    assert labels[0].request_id == "r-1"


async def test_a_prediction_with_a_version_past_the_store_is_skipped_and_the_next_joins(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory() as harness:
        await harness.send_request(request("bad"))
        record = classified("bad", "setosa").model_dump(mode="json")
        record["version"] = 2**31  # past PostgreSQL's integer column
        await _send_raw(harness, PREDICTIONS, record, "bad")
        record["version"] = 2**63  # past SQLite's
        await _send_raw(harness, PREDICTIONS, record, "bad")
        await harness.served("r-1", "setosa")
        await harness.send_feedback(feedback("r-1", label="setosa"))

        labels = await harness.labels(1, timeout=30)

    assert labels[0].request_id == "r-1"
