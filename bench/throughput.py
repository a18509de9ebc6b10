"""End-to-end throughput: requests in as fast as the bench can publish, predictions out."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from bench.kafka_io import PredictionCollector, make_producer, send_all
from bench.measure import (
    CpuMeter,
    MachineCpuMeter,
    cpu_breakdown,
    histogram_counts,
    parse_prometheus,
    subtract,
    sum_samples,
)
from bench.profiling import sampled
from bench.report import progress
from bench.stack import PARTITIONS, BenchStack
from bench.workload import distinct_inputs, encode_request, request_for
from devtools.service_process import ServiceProcess
from shared.kafka.codec import OutgoingRecord
from shared.topics import PREDICTIONS, REQUESTS

WARM_UP_TIMEOUT_SECONDS = 60.0
DRAIN_TIMEOUT_SECONDS = 240.0
METRIC = "modelbus_inference_"


def run_relay(stack: BenchStack, records: list[OutgoingRecord], *, label: str) -> dict[str, Any]:
    """The same as one worker's run with bench.relay in the worker's place: two hops through
    the broker, no model (see bench/relay.py)."""
    prefix = stack.prefix(label)
    asyncio.run(stack.create_topics(prefix))
    relay = stack.start_relay(prefix)
    try:
        return asyncio.run(
            _publish_and_collect(
                stack, prefix, records, [relay], read_committed=False, role="relay"
            )
        )
    finally:
        stack.stop([relay])


def run_throughput(
    stack: BenchStack,
    records: list[OutgoingRecord],
    *,
    label: str,
    workers: int = 1,
    delivery_mode: str = "at-least-once",
) -> dict[str, Any]:
    """Start `workers` worker processes on a fresh prefix, warm them up, publish `records`
    and wait for every prediction; the workers are stopped before returning."""
    prefix = stack.prefix(label)
    asyncio.run(stack.create_topics(prefix))
    started = stack.start_workers(prefix, workers, delivery_mode=delivery_mode)
    try:
        stack.wait_workers_ready(started)
        progress(f"   {workers} worker(s) ready ({delivery_mode}); publishing {len(records):,}")
        result = asyncio.run(
            _publish_and_collect(
                stack,
                prefix,
                records,
                started,
                read_committed=delivery_mode == "exactly-once",
            )
        )
    finally:
        exit_codes = stack.stop(started)
    result["worker_exit_codes"] = list(exit_codes.values())
    result["workers"] = workers
    result["delivery_mode"] = delivery_mode
    return result


async def scrape_metrics(workers: list[ServiceProcess]) -> list[dict[str, float]]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        answers = await asyncio.gather(*(client.get(w.base_url + "/metrics") for w in workers))
    return [parse_prometheus(answer.text) for answer in answers]


async def warm_up(
    stack: BenchStack, producer: AIOKafkaProducer, topic: str, collector: PredictionCollector
) -> None:
    """One request per partition: every worker has loaded the model before the clock runs."""
    rows = distinct_inputs(stack.model.features, PARTITIONS, seed=99)
    warm = [
        encode_request(request_for(stack.model, row, f"warm-{index}"))
        for index, row in enumerate(rows)
    ]
    collector.expect(f"warm-{index}" for index in range(PARTITIONS))
    for partition, record in enumerate(warm):
        await producer.send(
            topic, record.value, key=record.key, headers=record.headers, partition=partition
        )
    if not await collector.wait(WARM_UP_TIMEOUT_SECONDS):
        raise RuntimeError(f"warm-up: {collector.missing} of {PARTITIONS} answers missing")


async def _publish_and_collect(
    stack: BenchStack,
    prefix: str,
    records: list[OutgoingRecord],
    workers: list[ServiceProcess],
    *,
    read_committed: bool,
    role: str = "workers",
) -> dict[str, Any]:
    """Publish `records`, wait for every answer, and measure; `role` names the answering
    processes in the CPU figures. Workers ("workers") are also asked for their metrics."""
    scraped = role == "workers"
    collector = PredictionCollector(
        stack.bootstrap, prefix + PREDICTIONS.name, read_committed=read_committed
    )
    producer = make_producer(stack.bootstrap)
    await collector.start()
    await producer.start()
    try:
        topic = prefix + REQUESTS.name
        await warm_up(stack, producer, topic, collector)
        before = await scrape_metrics(workers) if scraped else []
        ids = [record.key.decode() for record in records if record.key is not None]
        collector.expect(ids)
        meters = {
            role: CpuMeter([worker.pid for worker in workers]),
            "broker": CpuMeter([stack.broker_pid]),
            "bench_process": CpuMeter([os.getpid()], descendants=False),
        }
        machine = MachineCpuMeter()
        machine.start()
        for meter in meters.values():
            meter.start()
        with sampled(stack.profile_dir, prefix.rstrip("-"), [(w.name, w.pid) for w in workers]):
            first_send = time.perf_counter()
            acknowledgements = await send_all(producer, topic, records)
            all_handed_over = time.perf_counter()
            complete = await collector.wait(DRAIN_TIMEOUT_SECONDS)
        cpu = {name: meter.stop() for name, meter in meters.items()}
        machine_cpu = machine.stop()
        await asyncio.gather(*acknowledgements)
        after = await scrape_metrics(workers) if scraped else []
    finally:
        await producer.stop()
        await collector.stop()
    answered = len(records) - collector.missing
    seconds = (collector.last_arrival if complete else time.perf_counter()) - first_send
    measured = {
        "messages": len(records),
        "answered": answered,
        "complete": complete,
        "seconds": round(seconds, 3),
        "per_second": round(answered / seconds, 1),
        "publish_seconds": round(all_handed_over - first_send, 3),
        "cpu_seconds": cpu,
        **cpu_breakdown(cpu, seconds=seconds, messages=len(records), machine=machine_cpu),
        "check": {
            "every_request_answered_once": complete and collector.duplicates == 0,
            "missing": collector.missing,
            "duplicates": collector.duplicates,
            "not_ok": len(collector.not_ok),
            "not_ok_codes": sorted(set(collector.not_ok.values())),
            "shadow_answers": collector.shadows,
        },
    }
    if not scraped:
        return measured
    deltas = [subtract(a, b) for a, b in zip(after, before, strict=True)]
    hits = sum_samples(deltas, METRIC + "cache_hits_total")
    misses = sum_samples(deltas, METRIC + "cache_misses_total")
    return measured | {
        "cache": {
            "hits": int(hits),
            "misses": int(misses),
            "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        },
        "records_per_worker": [int(d.get(METRIC + "records_total", 0)) for d in deltas],
        "worker_batches": int(sum_samples(deltas, METRIC + "batches_total")),
        "worker_batch_size_histogram": histogram_counts(deltas, METRIC + "batch_size_records"),
    }
