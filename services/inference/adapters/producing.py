"""Hand records to the producer in whole batches, one per partition.

send() does bookkeeping per record (metadata wait, size estimate, partition lists, a
future each); packing a micro-batch's outputs into one producer batch per partition,
with the producer's own key partitioner, does that work once per partition instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from shared.kafka.codec import OutgoingRecord

# Murmur2 of the key, as the Java client: a prediction lands where its key always lands.
_PARTITIONER = DefaultPartitioner()


async def queue_records(
    producer: AIOKafkaProducer, outgoing: list[OutgoingRecord]
) -> list[asyncio.Future[Any]]:
    """Hand every record to the producer; returns the acknowledgements to wait for.

    Records are packed into one producer batch per partition (partitioned by key
    exactly as the producer would), which spares the per-record bookkeeping of
    send(); a record too big for a batch of its own still goes through send().
    """
    builders: dict[TopicPartition, Any] = {}
    acknowledgements: list[asyncio.Future[Any]] = []
    partitions: dict[str, list[int]] = {}
    for record in outgoing:
        topic = record.topic
        known = partitions.get(topic)
        if known is None:
            known = partitions[topic] = sorted(await producer.partitions_for(topic))
        tp = TopicPartition(topic, _PARTITIONER(record.key, known, known))
        builder = builders.get(tp)
        if builder is None:
            builder = builders[tp] = producer.create_batch()
        if builder.append(
            key=record.key, value=record.value, timestamp=None, headers=record.headers
        ):
            continue
        del builders[tp]
        if builder.record_count():
            builder.close()
            acknowledgements.append(
                await producer.send_batch(builder, topic, partition=tp.partition)
            )
            builder = builders[tp] = producer.create_batch()
            if builder.append(
                key=record.key, value=record.value, timestamp=None, headers=record.headers
            ):
                continue
            del builders[tp]
        acknowledgements.append(
            await producer.send(
                topic,
                record.value,
                key=record.key,
                partition=tp.partition,
                headers=record.headers,
            )
        )
    for tp, builder in builders.items():
        builder.close()
        acknowledgements.append(
            await producer.send_batch(builder, tp.topic, partition=tp.partition)
        )
    return acknowledgements
