"""A worker with no model: the two-hop transport ceiling.

`python -m bench.relay --bootstrap HOST:PORT --prefix PREFIX` consumes `requests` in a
consumer group and answers every record on `predictions` (same key, same headers, a
minimal ok prediction), with the inference worker's Kafka settings and pipeline shape:
micro-batches from getmany, outputs packed per partition, a few batches in flight, each
committed in order once acknowledged. It is the end-to-end path with decoding,
validation, prediction and encoding taken out, so the bench can say how much of the
gap to the one-hop raw loop is transport and how much is serving.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import deque
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from bench.kafka_io import (
    CONSUMER_OPTIONS,
    GETMANY_MAX_RECORDS,
    GETMANY_TIMEOUT_MS,
    PRODUCER_OPTIONS,
)
from shared.kafka.codec import OutgoingRecord
from shared.kafka.producing import queue_records
from shared.runtime.consumer import MAX_BATCHES_IN_FLIGHT
from shared.topics import PREDICTIONS, REQUESTS


def relayed(records: list[ConsumerRecord[Any, Any]], topic: str) -> list[OutgoingRecord]:
    """One ok answer per record, keyed (and so partitioned) like it, carrying its headers.

    The value has the fields the bench's prediction reader looks at and nothing else:
    the request id is the record's key, as for every request the bench publishes.
    """
    return [
        OutgoingRecord(
            topic,
            record.key,
            orjson.dumps(
                {
                    "request_id": record.key.decode(),
                    "variant": "production",
                    "status": "ok",
                    "latency_ms": 0.0,
                }
            ),
            list(record.headers),
        )
        for record in records
    ]


async def relay(bootstrap: str, prefix: str, stopping: asyncio.Event) -> int:
    """Relay until `stopping` is set; returns how many records were relayed."""
    consumer = AIOKafkaConsumer(
        prefix + REQUESTS.name,
        bootstrap_servers=bootstrap,
        client_id="bench-relay",
        group_id=f"{prefix}relay",
        **CONSUMER_OPTIONS,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id="bench-relay", **PRODUCER_OPTIONS
    )
    topic = prefix + PREDICTIONS.name
    await consumer.start()
    await producer.start()
    in_flight: deque[asyncio.Task[None]] = deque()
    relayed_count = 0

    async def commit_when_acknowledged(
        acknowledgements: list[asyncio.Future[Any]],
        offsets: dict[TopicPartition, int],
        previous: asyncio.Task[None] | None,
    ) -> None:
        await asyncio.gather(*acknowledgements)
        if previous is not None:
            await previous  # commits stay in batch order
        await consumer.commit(offsets)

    try:
        while not stopping.is_set():
            batch = await consumer.getmany(
                timeout_ms=GETMANY_TIMEOUT_MS, max_records=GETMANY_MAX_RECORDS
            )
            if not batch:
                continue
            records = [record for records in batch.values() for record in records]
            offsets = {tp: items[-1].offset + 1 for tp, items in batch.items()}
            acknowledgements = await queue_records(producer, relayed(records, topic))
            previous = in_flight[-1] if in_flight else None
            in_flight.append(
                asyncio.create_task(commit_when_acknowledged(acknowledgements, offsets, previous))
            )
            relayed_count += len(records)
            while len(in_flight) >= MAX_BATCHES_IN_FLIGHT or (in_flight and in_flight[0].done()):
                await in_flight.popleft()
        while in_flight:
            await in_flight.popleft()
    finally:
        await producer.stop()
        await consumer.stop()
    return relayed_count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relay",
        description="Relay `requests` to `predictions` with no model (the bench's two-hop "
        "transport ceiling); stops on SIGTERM or SIGINT.",
    )
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--prefix", required=True, help="topic prefix of the run")
    args = parser.parse_args(argv)

    async def run() -> int:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        count = await relay(args.bootstrap, args.prefix, stopping)
        print(f"relayed {count} records", flush=True)
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main())
