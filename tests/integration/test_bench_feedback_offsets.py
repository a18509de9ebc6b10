"""The feedback scenario's view of a consumer group on the real broker: what is left for
the group is the topics' end offsets less what it committed."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.feedback import Offsets, backlog, partitions_of
from devtools.kafka_broker import KafkaBroker
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import OutgoingRecord
from shared.kafka.producing import queue_records
from shared.topics import REQUESTS

pytestmark = [pytest.mark.kafka]

PARTITIONS = 3
COUNT = 30


async def test_backlog_falls_to_zero_as_the_group_commits(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = topic_prefix + REQUESTS.name
    group = f"{topic_prefix}feedback"
    await ensure_topics(
        bootstrap, prefix=topic_prefix, specs=[REQUESTS], partitions_override=PARTITIONS
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        records = [OutgoingRecord(topic, f"r-{i}".encode(), b"{}", []) for i in range(COUNT)]
        await asyncio.gather(*await queue_records(producer, records))
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    partitions = partitions_of(topic, PARTITIONS)
    await consumer.start()
    try:
        async with Offsets(bootstrap) as offsets:
            ends = await offsets.ends(partitions)
            assert sum(ends.values()) == COUNT
            assert backlog(ends, await offsets.committed(group)) == COUNT

            read: dict[TopicPartition, int] = {}
            while sum(read.values()) < COUNT:
                for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                    read[tp] = batch[-1].offset + 1
            first, *rest = sorted(read)
            await consumer.commit({first: read[first]})
            assert backlog(ends, await offsets.committed(group)) == COUNT - read[first]

            await consumer.commit({tp: read[tp] for tp in rest})
            assert backlog(ends, await offsets.committed(group)) == 0
    finally:
        await consumer.stop()
