"""Two workers share the partitions; when one leaves, the other takes over its share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from devtools.sample_models import iris_classifier
from shared.contracts import PredictionRequest
from shared.topics import PREDICTIONS
from tests.integration.inference.conftest import (
    REQUEST_PARTITIONS,
    Stack,
    TopicFollower,
    answered,
    eventually,
)


async def test_workers_split_partitions_and_hand_over_on_stop(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier()])
    first_wave = [iris_request(f"a-{i}", routing_key=f"e-{i}") for i in range(400)]
    second_wave = [iris_request(f"b-{i}", routing_key=f"e-{i}") for i in range(400)]
    async with (
        stack.worker() as one,
        stack.worker() as two,
        TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower,
    ):

        async def split() -> bool:
            owned = [one.readiness()[1]["partitions"], two.readiness()[1]["partitions"]]
            return all(owned) and sorted(owned[0] + owned[1]) == list(range(REQUEST_PARTITIONS))

        await eventually(split)
        await stack.send(first_wave)
        await follower.until(answered(r.request_id for r in first_wave))
        assert one.metrics.records > 0 and two.metrics.records > 0

        leaving = asyncio.create_task(one.stop())
        await stack.send(second_wave)
        await leaving
        predictions = await follower.until(answered(r.request_id for r in second_wave))
        assert two.readiness()[1]["partitions"] == list(range(REQUEST_PARTITIONS))
    ids = {p.request_id for p in predictions}
    assert ids >= {r.request_id for r in first_wave + second_wave}
