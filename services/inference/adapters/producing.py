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
from shared.kafka.partitioning import partitions_for_keys

# For records without a key (a random partition, as the producer would choose).
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
    for record, partition in zip(outgoing, await _partitions(producer, outgoing), strict=True):
        tp = TopicPartition(record.topic, partition)
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
                await producer.send_batch(builder, tp.topic, partition=tp.partition)
            )
            builder = builders[tp] = producer.create_batch()
            if builder.append(
                key=record.key, value=record.value, timestamp=None, headers=record.headers
            ):
                continue
            del builders[tp]
        acknowledgements.append(
            await producer.send(
                tp.topic,
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


async def _partitions(producer: AIOKafkaProducer, outgoing: list[OutgoingRecord]) -> list[int]:
    """Each record's partition, by key exactly as the producer's default partitioner
    (murmur2, as the Java client): a prediction lands where its key always lands."""
    chosen = [0] * len(outgoing)
    by_topic: dict[str, list[int]] = {}
    for index, record in enumerate(outgoing):
        by_topic.setdefault(record.topic, []).append(index)
    for topic, indices in by_topic.items():
        known = sorted(await producer.partitions_for(topic))
        keyed = [index for index in indices if outgoing[index].key is not None]
        keys = [outgoing[index].key or b"" for index in keyed]
        for index, position in zip(keyed, partitions_for_keys(keys, len(known)), strict=True):
            chosen[index] = known[position]
        for index in indices:
            if outgoing[index].key is None:
                chosen[index] = _PARTITIONER(None, known, known)
    return chosen
