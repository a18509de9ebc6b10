"""Latency at a steady rate: publish -> prediction read, and publish -> signed webhook received."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bench.kafka_io import PredictionCollector, make_producer
from bench.measure import (
    CpuMeter,
    MachineCpuMeter,
    cpu_breakdown,
    histogram_counts,
    scrape_prometheus,
    subtract,
)
from bench.profiling import sampled
from bench.report import progress
from bench.stack import REPO_ROOT, BenchStack, venv_command
from bench.throughput import scrape_metrics, warm_up
from bench.workload import distinct_inputs, encode_request, request_for
from devtools.ports import free_port
from devtools.service_process import ServiceProcess, clean_env
from shared.latency import latency_summary
from shared.topics import PREDICTIONS, REQUESTS

TICK_SECONDS = 0.005
"""Requests go out in small bursts this often: a steady stream, not one batch."""
RAMP_SECONDS = 2.0
"""Each phase starts with this long at the same rate, unmeasured, so the figures describe
the steady state rather than the first batches after an idle pause."""
PREDICTION_DRAIN_SECONDS = 60.0
WEBHOOK_DRAIN_SECONDS = 120.0
DELIVERY_READY_TIMEOUT_SECONDS = 60.0
RECEIVER_READY_TIMEOUT_SECONDS = 30.0


CLOCK_AGREEMENT_SECONDS = 0.5
"""How far the receiver's clock may read from the bench's (both CLOCK_MONOTONIC)."""


@dataclass
class Webhooks:
    """The receiver process (bench/webhook_receiver.py) and what it says arrived when."""

    process: ServiceProcess
    callback_url: str

    async def count(self) -> int:
        """Requests whose webhook arrived so far."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            answer = await client.get(self.process.base_url + "/count")
        return int(answer.json()["requests"])

    async def received_at(self) -> dict[str, float]:
        """Request id -> when its first webhook arrived, on the bench's clock."""
        asked = time.perf_counter()
        async with httpx.AsyncClient(timeout=30.0) as client:
            answer = (await client.get(self.process.base_url + "/arrivals")).json()
        answered = time.perf_counter()
        if (
            not asked - CLOCK_AGREEMENT_SECONDS
            <= answer["now"]
            <= answered + CLOCK_AGREEMENT_SECONDS
        ):
            raise RuntimeError(
                f"the receiver's clock ({answer['now']:.3f}) is not the bench's "
                f"({asked:.3f}-{answered:.3f}): arrival times cannot be compared"
            )
        return {str(key): float(value) for key, value in answer["received_at"].items()}


@contextmanager
def webhook_receiver(stack: BenchStack, secret: str) -> Iterator[Webhooks]:
    """The reference receiver (signature-verifying) in its own process."""
    port = free_port()
    receiver = stack.launch(
        "webhook receiver",
        [sys.executable, "-m", "bench.webhook_receiver", "--port", str(port)],
        env=clean_env({"MODELBUS_WEBHOOK_SECRET": secret}),
        log_name="webhook-receiver.log",
        base_url=f"http://127.0.0.1:{port}",
    )
    try:
        receiver.wait_healthy("/stats", timeout=RECEIVER_READY_TIMEOUT_SECONDS)
        yield Webhooks(receiver, f"{receiver.base_url}/hooks/bench")
    finally:
        stack.stop([receiver])


def new_webhook_secret() -> str:
    """A Standard Webhooks secret from `modelbus delivery new-secret`."""
    completed = subprocess.run(
        [str(venv_command("modelbus")), "delivery", "new-secret"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=clean_env({}),
    )
    return completed.stdout.strip().splitlines()[-1]


def start_delivery(stack: BenchStack, prefix: str, secret: str) -> ServiceProcess:
    """`modelbus delivery run` on the scenario's prefix; it starts at the end of
    `predictions` (answers of the phase without callbacks are not its backlog)."""
    port = free_port()
    env = clean_env(
        {
            "MODELBUS_KAFKA_BOOTSTRAP": stack.bootstrap,
            "MODELBUS_TOPIC_PREFIX": prefix,
            "MODELBUS_WEBHOOK_SECRET": secret,
            "MODELBUS_CALLBACK_SEAL_KEY": stack.callback_seal_key,
            "MODELBUS_WEBHOOK_ALLOWLIST": "127.0.0.1",
            "MODELBUS_JOBS_DATABASE_URL": f"sqlite:///{stack.work_dir / f'{prefix}jobs.db'}",
            "MODELBUS_DELIVERY_HEALTH_PORT": str(port),
            "MODELBUS_CONSUMER_GROUP": f"{prefix}delivery",
            "MODELBUS_CONSUMER_OFFSET_RESET": "latest",
        }
    )
    delivery = stack.launch(
        f"delivery {prefix}",
        [str(venv_command("modelbus")), "delivery", "run"],
        env=env,
        log_name=f"{prefix}delivery.log",
        base_url=f"http://127.0.0.1:{port}",
    )
    delivery.wait_healthy("/readyz", timeout=DELIVERY_READY_TIMEOUT_SECONDS)
    return delivery


def run_latency(stack: BenchStack, *, rate: int, seconds: float) -> dict[str, Any]:
    """One worker; `rate` requests/s for `seconds` twice: first without callbacks and no
    delivery service (the worker's own latency), then with a callback on every request
    and the delivery service running (the scenario as specified)."""
    prefix = stack.prefix("latency")
    asyncio.run(stack.create_topics(prefix))
    secret = new_webhook_secret()
    with webhook_receiver(stack, secret) as webhooks:
        workers = stack.start_workers(prefix, 1)
        try:
            stack.wait_workers_ready(workers)
            run = LatencyRun(stack, prefix, workers[0], rate=rate, seconds=seconds)
            result = asyncio.run(run.both_phases(secret, webhooks))
        finally:
            exit_codes = stack.stop(stack_services(stack, prefix))
    result["exit_codes"] = list(exit_codes.values())
    return result


def stack_services(stack: BenchStack, prefix: str) -> list[ServiceProcess]:
    return [service for service in stack.services if prefix in service.name]


class LatencyRun:
    """Paced publishing against one worker, with a collector reading every answer."""

    def __init__(
        self, stack: BenchStack, prefix: str, worker: ServiceProcess, *, rate: int, seconds: float
    ) -> None:
        self.stack = stack
        self.prefix = prefix
        self.worker = worker
        self.rate = rate
        self.seconds = seconds
        self.topic = prefix + REQUESTS.name

    async def both_phases(self, secret: str, webhooks: Webhooks) -> dict[str, Any]:
        # Kafka clients belong to the event loop they are created in.
        self.collector = PredictionCollector(self.stack.bootstrap, self.prefix + PREDICTIONS.name)
        self.producer = make_producer(self.stack.bootstrap)
        await self.collector.start()
        await self.producer.start()
        try:
            await warm_up(self.stack, self.producer, self.topic, self.collector)
            progress(
                f"   phase 1: {self.rate:,}/s for {self.seconds:g} s, no callbacks, worker only"
            )
            alone = await self._phase("a", seed=3, webhooks=None, delivery=None)
            delivery = await asyncio.to_thread(start_delivery, self.stack, self.prefix, secret)
            progress(
                f"   phase 2: {self.rate:,}/s for {self.seconds:g} s with callbacks to "
                f"{webhooks.callback_url}, delivery service running"
            )
            with_webhooks = await self._phase("b", seed=4, webhooks=webhooks, delivery=delivery)
            delivery_metrics = await asyncio.to_thread(scrape_prometheus, delivery.base_url)
        finally:
            await self.producer.stop()
            await self.collector.stop()
        with_webhooks["delivery_metrics"] = {
            key: value
            for key, value in delivery_metrics.items()
            if key.startswith("modelbus_delivery_")
            and ("_total" in key or key.endswith(("_backlog", "_in_flight")))
            and "{" not in key
        }
        return with_webhooks | {"worker_alone": alone}

    async def _phase(
        self,
        tag: str,
        *,
        seed: int,
        webhooks: Webhooks | None,
        delivery: ServiceProcess | None,
    ) -> dict[str, Any]:
        stack, collector, rate = self.stack, self.collector, self.rate
        callback = webhooks.callback_url if webhooks is not None else None
        total = int(rate * self.seconds)
        ramp = int(rate * RAMP_SECONDS)
        rows = distinct_inputs(stack.model.features, ramp + total, seed=seed)
        ids = [f"lat{tag}-{index}" for index in range(total)]
        paced_ids = [f"lat{tag}-ramp-{index}" for index in range(ramp)] + ids
        collector.expect(ids)
        meters = {
            "worker": CpuMeter([self.worker.pid]),
            "broker": CpuMeter([stack.broker_pid]),
            "bench_process": CpuMeter([os.getpid()], descendants=False),
        }
        if delivery is not None:
            meters["delivery"] = CpuMeter([delivery.pid])
        if webhooks is not None:
            meters["receiver"] = CpuMeter([webhooks.process.pid])
        machine = MachineCpuMeter()
        sent_at: dict[str, float] = {}
        acknowledgements = []
        profiled = [(self.worker.name, self.worker.pid)]
        if delivery is not None:
            profiled.append((delivery.name, delivery.pid))
        profiling = ExitStack()
        profiling.enter_context(sampled(stack.profile_dir, f"latency-{tag}", profiled))
        paced_from = time.perf_counter()
        started = paced_from
        before_task: asyncio.Task[list[dict[str, float]]] | None = None
        sent = 0
        while sent < len(paced_ids):
            due = min(len(paced_ids), int((time.perf_counter() - paced_from) * rate) + 1)
            while sent < due:
                if sent == ramp:  # the ramp is over: measure from here, without a pause
                    before_task = asyncio.create_task(scrape_metrics([self.worker]))
                    machine.start()
                    for meter in meters.values():
                        meter.start()
                    started = time.perf_counter()
                request_id = paced_ids[sent]
                request = request_for(stack.model, rows[sent], request_id, callback=callback)
                record = encode_request(request)
                sent_at[request_id] = time.perf_counter()
                acknowledgements.append(
                    await self.producer.send(
                        self.topic, record.value, key=record.key, headers=record.headers
                    )
                )
                sent += 1
            await asyncio.sleep(TICK_SECONDS)
        assert before_task is not None
        before = (await before_task)[0]
        last_send = sent_at[ids[-1]]
        predictions_complete = await collector.wait(PREDICTION_DRAIN_SECONDS)
        cpu = {name: meter.stop() for name, meter in meters.items()}
        profiling.close()
        machine_cpu = machine.stop()
        cpu_window = time.perf_counter() - started
        await asyncio.gather(*acknowledgements)
        worker_metrics = subtract((await scrape_metrics([self.worker]))[0], before)
        send_window = last_send - started
        to_prediction = [
            (collector.arrivals[rid] - sent_at[rid]) * 1000
            for rid in ids
            if rid in collector.arrivals
        ]
        result: dict[str, Any] = {
            "target_rate": rate,
            "messages": total,
            "seconds": round(send_window, 3),
            "achieved_rate": round((total - 1) / send_window, 1) if send_window > 0 else None,
            "cpu_seconds": cpu,
            **cpu_breakdown(cpu, seconds=cpu_window, messages=total, machine=machine_cpu),
            "publish_to_prediction": latency_summary(to_prediction),
            "worker_reported_latency": latency_summary(
                [collector.latency_ms[rid] for rid in ids if rid in collector.latency_ms]
            ),
            "predictions_complete": predictions_complete,
            "check": {
                "missing_predictions": collector.missing,
                "duplicates": collector.duplicates,
                "not_ok": len(collector.not_ok),
            },
            "worker_batch_size_histogram": histogram_counts(
                [worker_metrics], "modelbus_inference_batch_size_records"
            ),
            "worker_batches": int(worker_metrics.get("modelbus_inference_batches_total", 0)),
        }
        if webhooks is not None:
            for _ in range(int(WEBHOOK_DRAIN_SECONDS / 0.1)):
                if await webhooks.count() >= len(paced_ids):  # the ramp's arrive too
                    break
                await asyncio.sleep(0.1)
            drained = time.perf_counter()
            delivered = await webhooks.received_at()
            to_webhook = [(delivered[rid] - sent_at[rid]) * 1000 for rid in ids if rid in delivered]
            result["publish_to_webhook"] = latency_summary(to_webhook)
            result["webhooks_received"] = len(to_webhook)
            result["webhook_drain_seconds_after_last_send"] = round(drained - last_send, 2)
            result["check"]["missing_webhooks"] = total - len(to_webhook)
        return result
