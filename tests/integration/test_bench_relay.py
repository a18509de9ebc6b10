"""The bench's relay (its two-hop transport ceiling) answers every request once, on the
real broker, and commits only what it answered."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.relay import relay
from devtools.kafka_broker import KafkaBroker
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import OutgoingRecord
from shared.kafka.producing import queue_records
from shared.topics import PREDICTIONS, REQUESTS
from tests.support.topic_reader import read_records

pytestmark = [pytest.mark.kafka]

PARTITIONS = 3
COUNT = 3_000


async def test_relay_answers_each_request_once_keyed_like_it_and_commits_it(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    bootstrap = kafka_broker.bootstrap
    await ensure_topics(
        bootstrap,
        prefix=topic_prefix,
        specs=[REQUESTS, PREDICTIONS],
        partitions_override=PARTITIONS,
    )
    requests = [
        OutgoingRecord(
            topic_prefix + REQUESTS.name, f"req-{i}".encode(), b"{}", [("ce_id", str(i).encode())]
        )
        for i in range(COUNT)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await asyncio.gather(*await queue_records(producer, requests))
    finally:
        await producer.stop()
    stopping = asyncio.Event()
    relaying = asyncio.create_task(relay(bootstrap, topic_prefix, stopping))

    answers = await read_records(bootstrap, topic_prefix + PREDICTIONS.name, expected=COUNT)
    stopping.set()
    relayed = await asyncio.wait_for(relaying, timeout=30)

    assert relayed == COUNT
    by_key = {record.key: record for record in answers}
    assert len(answers) == COUNT and len(by_key) == COUNT
    sample = by_key[b"req-42"]
    assert orjson.loads(sample.value) == {
        "request_id": "req-42",
        "variant": "production",
        "status": "ok",
        "latency_ms": 0.0,
    }
    assert dict(sample.headers) == {"ce_id": b"42"}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{topic_prefix}relay")
    finally:
        await admin.close()
    topic = topic_prefix + REQUESTS.name
    total = sum(committed[TopicPartition(topic, p)].offset for p in range(PARTITIONS))
    assert total == COUNT
