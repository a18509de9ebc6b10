"""Checks that the real Kafka broker started by infra/kafka/kafka.sh does what modelbus needs.

Everything modelbus builds on (explicit topic creation, consumer groups, transactions with
read_committed consumers) is exercised here against the genuine broker, so a Kafka or
aiokafka upgrade that breaks it fails loudly in one obvious place.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devtools.kafka_broker import KafkaBroker

pytestmark = pytest.mark.kafka


def _name(prefix: str) -> str:
    """Unique topic/group names, so tests never see each other's data."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _create_topics(bootstrap: str, *topics: str, partitions: int) -> None:
    """Create topics explicitly (the broker has auto.create.topics.enable=false)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    t,
                    num_partitions=partitions,
                    replication_factor=1,
                    topic_configs={"retention.ms": "3600000"},
                )
                for t in topics
            ]
        )
        # The broker applies new metadata asynchronously, a few ms after CreateTopics returns.
        async with asyncio.timeout(10):
            while True:
                described = await admin.describe_topics(list(topics))
                counts = {
                    d["topic"]: len(d["partitions"]) for d in described if not d["error_code"]
                }
                if counts == dict.fromkeys(topics, partitions):
                    break
                await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def _drain(
    consumer: AIOKafkaConsumer, want: int, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Poll until ``want`` records arrived (or fail after ``timeout`` seconds)."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    async with asyncio.timeout(timeout):
        while len(records) < want:
            batch = await consumer.getmany(timeout_ms=500, max_records=want - len(records))
            for part in batch.values():
                records.extend(part)
    return records


async def test_broker_reports_start_time(kafka_broker: KafkaBroker) -> None:
    assert kafka_broker.bootstrap.startswith("127.0.0.1:") or kafka_broker.external
    assert kafka_broker.start_seconds < 120


async def test_produce_and_consume_with_consumer_group(kafka_broker: KafkaBroker) -> None:
    topic, group = _name("roundtrip"), _name("group")
    await _create_topics(kafka_broker.bootstrap, topic, partitions=3)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(9):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i % 3}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await _drain(consumer, 9)
        await consumer.commit()
        committed = {tp.partition: await consumer.committed(tp) for tp in consumer.assignment()}
    finally:
        await consumer.stop()

    assert sorted(r.value for r in records if r.value) == sorted(f"v{i}".encode() for i in range(9))
    # Same key, same partition, in order.
    by_key: dict[bytes, list[int]] = {}
    for r in records:
        assert r.key is not None and r.value is not None
        by_key.setdefault(r.key, []).append(int(r.value[1:]))
    assert all(vals == sorted(vals) for vals in by_key.values())
    assert len(committed) == 3
    assert sum(o or 0 for o in committed.values()) == 9


async def test_transactional_consume_transform_produce(kafka_broker: KafkaBroker) -> None:
    source, sink, group = _name("txn-in"), _name("txn-out"), _name("txn-group")
    await _create_topics(kafka_broker.bootstrap, source, sink, partitions=2)

    plain = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    await plain.start()
    try:
        for i in range(6):
            await plain.send_and_wait(source, str(i).encode(), key=str(i).encode())
    finally:
        await plain.stop()

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=kafka_broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap, transactional_id=_name("txn-producer")
    )
    await consumer.start()
    await producer.start()
    try:
        processed = 0
        async with asyncio.timeout(30):
            while processed < 6:
                batch = await consumer.getmany(timeout_ms=500)
                if not batch:
                    continue
                async with producer.transaction():
                    offsets: dict[TopicPartition, int] = {}
                    for tp, records in batch.items():
                        for r in records:
                            assert r.value is not None
                            await producer.send(sink, str(int(r.value) * 10).encode(), key=r.key)
                            processed += 1
                        offsets[tp] = records[-1].offset + 1
                    await producer.send_offsets_to_transaction(offsets, group)

        # An aborted transaction must stay invisible to read_committed readers.
        await producer.begin_transaction()
        await producer.send(sink, b"aborted")
        await producer.abort_transaction()

        committed = [await consumer.committed(tp) for tp in consumer.assignment()]
    finally:
        await producer.stop()
        await consumer.stop()
    assert sum(o or 0 for o in committed) == 6

    reader = AIOKafkaConsumer(
        sink,
        bootstrap_servers=kafka_broker.bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await reader.start()
    try:
        output = await _drain(reader, 6)
        leftovers = await reader.getmany(timeout_ms=1000)
    finally:
        await reader.stop()
    values = sorted(r.value for r in output if r.value)
    assert values == sorted(str(i * 10).encode() for i in range(6))
    assert not any(r for part in leftovers.values() for r in part)
