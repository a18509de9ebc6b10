"""Batched producing puts every record where producer.send() would, big ones included."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from devtools.kafka_broker import KafkaBroker
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import OutgoingRecord
from shared.kafka.producing import queue_records
from shared.topics import DEAD_LETTERS, PREDICTIONS
from tests.integration.inference.conftest import TopicFollower


async def test_batched_records_land_on_the_partitions_send_would_choose(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    await ensure_topics(
        kafka_broker.bootstrap,
        prefix=topic_prefix,
        specs=[PREDICTIONS, DEAD_LETTERS],
        partitions_override=5,
    )
    batched_topic, plain_topic = topic_prefix + PREDICTIONS.name, topic_prefix + DEAD_LETTERS.name
    keys = [f"entity-{index}".encode() for index in range(300)]
    big_value = b"x" * 40_000  # larger than a whole producer batch
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, max_batch_size=16384)
    await producer.start()
    try:
        records = [OutgoingRecord(batched_topic, key, b"v" * 200, [("h", b"1")]) for key in keys]
        records.insert(150, OutgoingRecord(batched_topic, b"big", big_value, []))
        await asyncio.gather(*await queue_records(producer, records))
        plain = [await producer.send(plain_topic, b"v", key=key) for key in [*keys, b"big"]]
        await asyncio.gather(*plain)
    finally:
        await producer.stop()

    async with TopicFollower(kafka_broker.bootstrap, batched_topic) as batched:
        found = await batched.until_count(len(records))
    async with TopicFollower(kafka_broker.bootstrap, plain_topic) as expected:
        reference = await expected.until_count(len(keys) + 1)
    where = {record.key: record.partition for record in found}
    assert where == {record.key: record.partition for record in reference}
    assert len(set(where.values())) == 5
    assert next(r.value for r in found if r.key == b"big") == big_value
    assert all(dict(r.headers) == {"h": b"1"} for r in found if r.key != b"big")
    by_partition: dict[int, list[bytes]] = {}
    for record in sorted(found, key=lambda r: r.offset):
        by_partition.setdefault(record.partition, []).append(record.key)
    for partition, in_order in by_partition.items():
        sent_order = [r.key for r in records if where[r.key] == partition]
        assert in_order == sent_order
