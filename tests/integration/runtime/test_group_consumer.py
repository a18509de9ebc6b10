"""The shared consume loop on the real broker: commits after producing, rewinds on failure,
and replaces a record over the size limit instead of rewinding forever."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devtools.kafka_broker import KafkaBroker
from shared.kafka.codec import OutgoingRecord
from shared.runtime.consumer import ConsumerConfig, GroupConsumer
from tests.integration.inference.conftest import TopicFollower

LIMIT = 50_000


async def make_topics(bootstrap: str, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1) for name in names])
    finally:
        await admin.close()


async def publish(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=value)
    finally:
        await producer.stop()


async def committed(bootstrap: str, group: str, topic: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(TopicPartition(topic, 0))
    return None if meta is None else meta.offset


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def config(bootstrap: str, source: str, group: str, **overrides: Any) -> ConsumerConfig:
    values: dict[str, Any] = {
        "bootstrap": bootstrap,
        "topics": (source,),
        "group_id": group,
        "client_id": group,
        "batch_timeout_ms": 50,
        "session_timeout_ms": 6000,
        "max_record_bytes": LIMIT,
    }
    return ConsumerConfig(**(values | overrides))


async def run_member(member: GroupConsumer) -> asyncio.Task[None]:
    await member.start()
    return asyncio.create_task(member.run_until_stopped())


async def test_a_failed_batch_is_consumed_again_and_committed_once_produced(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    source, sink = topic_prefix + "in", topic_prefix + "out"
    group = topic_prefix + "group"
    await make_topics(kafka_broker.bootstrap, source, sink)
    await publish(kafka_broker.bootstrap, source, [b"one", b"two", b"three"])
    seen: list[list[bytes]] = []

    async def process(records: list[Any]) -> list[OutgoingRecord]:
        seen.append([record.value for record in records])
        # The first time, an output no producer accepts: producing fails, so the loop
        # must not commit and must consume the same records again.
        size = LIMIT * 2 if len(seen) == 1 else 10
        return [OutgoingRecord(sink, record.key, record.value * size, []) for record in records]

    retries: list[int] = []
    member = GroupConsumer(
        config(kafka_broker.bootstrap, source, group, max_batch_records=10),
        process,
        on_retry=lambda: retries.append(1),
    )
    running = await run_member(member)
    try:

        async def all_committed() -> bool:
            return await committed(kafka_broker.bootstrap, group, source) == 3

        await until(all_committed)
    finally:
        await member.stop()
        await running
    consumed = [value for batch in seen for value in batch]
    assert consumed.count(b"one") == 2  # failed once, consumed again from its first offset
    assert set(consumed) == {b"one", b"two", b"three"}
    assert retries
    async with TopicFollower(kafka_broker.bootstrap, sink) as follower:
        outputs = await follower.until_count(3)
    assert sorted(record.value for record in outputs) == sorted(
        [b"one" * 10, b"two" * 10, b"three" * 10]
    )


async def test_an_output_over_the_size_limit_is_replaced_and_the_stream_moves_on(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    source, sink = topic_prefix + "in", topic_prefix + "out"
    group = topic_prefix + "group"
    await make_topics(kafka_broker.bootstrap, source, sink)
    await publish(kafka_broker.bootstrap, source, [b"huge", b"fine"])
    calls = 0

    async def process(records: list[Any]) -> list[OutgoingRecord]:
        nonlocal calls
        calls += 1
        return [
            OutgoingRecord(
                sink, record.key, b"x" * (LIMIT * 2 if record.value == b"huge" else 5), []
            )
            for record in records
        ]

    def shrink(record: OutgoingRecord) -> OutgoingRecord:
        return OutgoingRecord(record.topic, record.key, b"too large", record.headers)

    member = GroupConsumer(config(kafka_broker.bootstrap, source, group), process, shrink=shrink)
    running = await run_member(member)
    try:

        async def all_committed() -> bool:
            return await committed(kafka_broker.bootstrap, group, source) == 2

        await until(all_committed)
    finally:
        await member.stop()
        await running
    async with TopicFollower(kafka_broker.bootstrap, sink) as follower:
        outputs = await follower.until_count(2)
    assert {record.key: record.value for record in outputs} == {
        b"huge": b"too large",
        b"fine": b"xxxxx",
    }
    assert calls <= 2  # never rewound (one call per fetched batch)
