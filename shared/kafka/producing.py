"""Hand records to the producer in whole batches, one per partition.

send() does bookkeeping per record (metadata wait, size estimate, partition lists, a
future each); packing a micro-batch's outputs into one producer batch per partition,
with the producer's own key partitioner, does that work once per partition instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from shared.kafka.codec import OutgoingRecord
from shared.kafka.partitioning import partitions_for_keys

# For records without a key (a random partition, as the producer would choose).
_PARTITIONER = DefaultPartitioner()

SIZE_HEADROOM = 64 * 1024
"""Room for a record's key and headers: values up to the limit minus this are not measured."""
Shrink = Callable[[OutgoingRecord], OutgoingRecord | None]
"""A small stand-in for a record over the producer's size limit (None: none possible)."""


async def queue_records(
    producer: AIOKafkaProducer, outgoing: list[OutgoingRecord], *, shrink: Shrink | None = None
) -> list[asyncio.Future[Any]]:
    """Hand every record to the producer; returns the acknowledgements to wait for.

    Records are packed into one producer batch per partition (partitioned by key
    exactly as the producer would), which spares the per-record bookkeeping of
    send(); a record too big for a batch of its own still goes through send(). One over
    the producer's size limit (max_request_size) is replaced by what `shrink` makes of
    it, else refused with MessageSizeTooLargeError: the broker would refuse it forever.
    """
    builders: dict[TopicPartition, Any] = {}
    acknowledgements: list[asyncio.Future[Any]] = []
    limit: int = producer._max_request_size
    near_limit = limit - SIZE_HEADROOM
    for record, partition in zip(outgoing, await _partitions(producer, outgoing), strict=True):
        if len(record.value) > near_limit:  # rare: only then the exact size is worth its cost
            record = _fitting(record, limit, shrink)
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


def _fitting(record: OutgoingRecord, limit: int, shrink: Shrink | None) -> OutgoingRecord:
    """The record, or its stand-in if it is over the producer's limit (which a batch of one
    record would not check: the broker would refuse it, and every retry with it)."""
    if _size(record) <= limit:
        return record
    smaller = shrink(record) if shrink is not None else None
    if smaller is None or _size(smaller) > limit:
        raise MessageSizeTooLargeError(
            f"a record for {record.topic} is {_size(record)} bytes, over the limit of {limit}"
        )
    return smaller


def _size(record: OutgoingRecord) -> int:
    return int(
        DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, record.value, record.headers)
    )


async def _partitions(producer: AIOKafkaProducer, outgoing: list[OutgoingRecord]) -> list[int]:
    """Each record's partition, by key exactly as the producer's default partitioner
    (murmur2, as the Java client): a prediction lands where its key always lands."""
    chosen = [0] * len(outgoing)
    by_topic: dict[str, list[int]] = {}
    for index, record in enumerate(outgoing):
        by_topic.setdefault(record.topic, []).append(index)
    for topic, indices in by_topic.items():
        known = sorted(await producer.partitions_for(topic))
        keyed = [
            index
            for index in indices
            if outgoing[index].key is not None and outgoing[index].partition is None
        ]
        keys = [outgoing[index].key or b"" for index in keyed]
        for index, position in zip(keyed, partitions_for_keys(keys, len(known)), strict=True):
            chosen[index] = known[position]
        for index in indices:
            explicit = outgoing[index].partition
            if explicit is not None:
                if explicit not in known:
                    raise ValueError(f"{topic} has no partition {explicit}")
                chosen[index] = explicit
            elif outgoing[index].key is None:
                chosen[index] = _PARTITIONER(None, known, known)
    return chosen
