"""Exactly-once: outputs and offsets commit together, in one Kafka transaction."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devtools.sample_models import iris_classifier
from shared.contracts import PredictionRequest
from shared.topics import PREDICTIONS, REQUESTS
from tests.integration.inference.conftest import (
    REQUEST_PARTITIONS,
    Stack,
    TopicFollower,
    answered,
    eventually,
)


async def committed_offsets(stack: Stack, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    topic = stack.topic(REQUESTS.name)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def end_offsets(stack: Stack, name: str = REQUESTS.name) -> dict[int, int]:
    topic = stack.topic(name)
    async with TopicFollower(stack.bootstrap, topic) as follower:
        partitions = [TopicPartition(topic, p) for p in range(REQUEST_PARTITIONS)]
        ends = await follower.consumer.end_offsets(partitions)
    return {tp.partition: offset for tp, offset in ends.items()}


async def test_exactly_once_outputs_are_committed_with_their_offsets(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier()])
    requests = [iris_request(f"eo-{i}", routing_key=f"k-{i}") for i in range(400)]
    group = stack.settings().consumer_group
    async with stack.worker(delivery_mode="exactly-once", max_batch_records=50):
        await stack.send(requests)
        committed = TopicFollower(
            stack.bootstrap, stack.topic(PREDICTIONS.name), isolation_level="read_committed"
        )
        async with committed:
            predictions = await committed.until(answered(r.request_id for r in requests))
        expected_ends = await end_offsets(stack)

        async def offsets_committed() -> bool:
            return await committed_offsets(stack, group) == expected_ends

        await eventually(offsets_committed)
    assert sorted(p.request_id for p in predictions) == sorted(r.request_id for r in requests)
    assert all(p.status == "ok" for p in predictions)
    assert sum(expected_ends.values()) == len(requests)
    # Each committed transaction leaves a control marker, which takes an offset of its own.
    output_ends = await end_offsets(stack, PREDICTIONS.name)
    assert sum(output_ends.values()) > len(predictions)


async def test_at_least_once_commits_exactly_the_processed_offsets(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier()])
    requests = [iris_request(f"al-{i}", routing_key=f"k-{i}") for i in range(120)]
    group = stack.settings().consumer_group
    async with stack.worker(max_batch_records=16) as worker:
        async with TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower:
            await stack.send(requests)
            predictions = await follower.until(answered(r.request_id for r in requests))
        expected_ends = await end_offsets(stack)

        async def offsets_committed() -> bool:
            return await committed_offsets(stack, group) == expected_ends

        await eventually(offsets_committed)
        assert worker.metrics.batches >= len(requests) // 16
    assert len(predictions) == len(requests)
