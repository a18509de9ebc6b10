"""The drift process under load (`drift` scenario): how fast one `modelbus drift run`
process drains what one inference worker is fed and answers, on the bench model's 20
numeric features, against that worker's rate measured in the same run.

The topics are filled before the process starts (requests as producers encode them and,
in the deployed configuration, the worker's prediction for each), so the process, not
the bench, sets the pace. The sketcher and the judge run in the one process, as deployed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from bench.feedback import (
    Offsets,
    backlog,
    chunked,
    partitions_of,
    process_memory,
    served_pairs,
    worker_reference,
)
from bench.kafka_io import make_producer, send_all
from bench.measure import CpuMeter, MachineCpuMeter, cpu_breakdown, scrape_prometheus
from bench.profiling import folded_stacks, sampled
from bench.report import progress
from bench.stack import PARTITIONS, BenchStack, venv_command
from bench.throughput import run_throughput
from bench.workload import BenchModel
from devtools.ports import free_port
from devtools.service_process import ServiceProcess, clean_env
from services.inference.adapters.kafka_records import PredictionEncoder
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import OutgoingRecord
from shared.topics import (
    DEAD_LETTERS,
    DRIFT_ALERTS,
    DRIFT_SKETCHES,
    DRIFT_STATE,
    LABELS,
    MODEL_EVENTS,
    PREDICTIONS,
    REQUESTS,
)

POLL_SECONDS = 0.05
DRAIN_LABEL = "drain"
READY_TIMEOUT_SECONDS = 120.0
DRAIN_TIMEOUT_SECONDS = 1800.0
METRIC = "modelbus_drift_"
COUNTERS = (
    "sketches_total",
    "sketches_applied_total",
    "alerts_total",
    "records_unreadable_total",
    "records_without_reference_total",
    "records_not_measured_total",
)
STREAMS = {
    "requests": (REQUESTS.name,),
    "requests+predictions": (REQUESTS.name, PREDICTIONS.name),
}
"""What the process is fed, by name: requests alone (what the target names), and requests
with the worker's predictions (what a deployed drift process reads for each request)."""


@dataclass(frozen=True)
class DriftThroughputPlan:
    requests: int
    """Requests in `requests` before the process starts (with as many predictions in the
    deployed configuration)."""
    configurations: tuple[str, ...] = ("requests+predictions", "requests")


@dataclass
class DriftRun:
    """One drift process on fresh topics."""

    stack: BenchStack
    prefix: str
    streams: tuple[str, ...]
    service: ServiceProcess | None = None

    def topic(self, name: str) -> str:
        return self.prefix + name

    @property
    def sketch_group(self) -> str:
        return f"{self.prefix}drift-sketch"

    @property
    def judge_group(self) -> str:
        return f"{self.prefix}drift-judge"

    async def create_topics(self) -> None:
        bootstrap = self.stack.bootstrap
        await ensure_topics(
            bootstrap,
            prefix=self.prefix,
            specs=[REQUESTS, PREDICTIONS],
            partitions_override=PARTITIONS,
        )
        await ensure_topics(
            bootstrap,
            prefix=self.prefix,
            specs=[LABELS, DRIFT_SKETCHES, DRIFT_STATE, DRIFT_ALERTS, MODEL_EVENTS, DEAD_LETTERS],
        )

    async def fill(self, model: BenchModel, *, total: int) -> float:
        """Publish `total` requests (and their predictions if the run reads them)."""
        started = time.perf_counter()
        encoder = PredictionEncoder(topic=self.topic(PREDICTIONS.name))
        producer: AIOKafkaProducer = make_producer(self.stack.bootstrap)
        await producer.start()
        try:
            for start, count in chunked(total):
                requests, predictions = served_pairs(
                    model, run="dr", start=start, count=count, encoder=encoder
                )
                acks = await send_all(producer, self.topic(REQUESTS.name), requests)
                if PREDICTIONS.name in self.streams:
                    acks += await send_all(producer, self.topic(PREDICTIONS.name), predictions)
                await asyncio.gather(*acks)
        finally:
            await producer.stop()
        return time.perf_counter() - started

    def start_service(self) -> ServiceProcess:
        port = free_port()
        registry = self.stack.registry
        env = clean_env(
            {
                "MODELBUS_KAFKA_BOOTSTRAP": self.stack.bootstrap,
                "MODELBUS_TOPIC_PREFIX": self.prefix,
                "MODELBUS_REGISTRY_URL": registry.url,
                "MODELBUS_REGISTRY_API_KEY": registry.keys["reader"],
                "MODELBUS_SKETCH_GROUP": self.sketch_group,
                "MODELBUS_JUDGE_GROUP": self.judge_group,
                "MODELBUS_CONSUMER_OFFSET_RESET": "earliest",
                "MODELBUS_INSTANCE_ID": f"{self.prefix}drift",
                "MODELBUS_DRIFT_HEALTH_PORT": str(port),
            }
        )
        self.service = self.stack.launch(
            f"drift {self.prefix}",
            [str(venv_command("modelbus")), "drift", "run"],
            env=env,
            log_name=f"{self.prefix}drift.log",
            base_url=f"http://127.0.0.1:{port}",
        )
        return self.service

    def _sampled(self, label: str) -> AbstractContextManager[None]:
        """py-spy on the process from its first commit (start-up is not the hot path)."""
        assert self.service is not None
        return sampled(self.stack.profile_dir, self.prefix + label, [("drift", self.service.pid)])

    async def drain(self, offsets: Offsets, *, label: str) -> dict[str, Any]:
        """Wait until the sketcher has committed every record of its streams and the judge
        every sketch; measured from the sketcher's first commit seen (a steady rate,
        without start-up) to the moment both are done. Called right after the launch:
        the loops consume before the process reports ready."""
        service = self.service
        assert service is not None
        streams = [
            tp for name in self.streams for tp in partitions_of(self.topic(name), PARTITIONS)
        ]
        sketches = partitions_of(self.topic(DRIFT_SKETCHES.name), DRIFT_SKETCHES.partitions)
        ends = await offsets.ends(streams)
        total = sum(ends.values())
        requests = sum(end for tp, end in ends.items() if tp.topic == self.topic(REQUESTS.name))
        meters = {
            "drift": CpuMeter([service.pid]),
            "broker": CpuMeter([self.stack.broker_pid]),
            "bench_process": CpuMeter([os.getpid()], descendants=False),
        }
        machine = MachineCpuMeter()
        started = time.perf_counter()
        first: tuple[float, int] | None = None
        sketched_at: float | None = None
        deadline = started + DRAIN_TIMEOUT_SECONDS
        with ExitStack() as sampling:
            while True:
                remaining = backlog(ends, await offsets.committed(self.sketch_group))
                now = time.perf_counter()
                if first is None and remaining < total:
                    first = (now, total - remaining)
                    machine.start()
                    for meter in meters.values():
                        meter.start()
                    sampling.enter_context(self._sampled(label))
                if remaining == 0:
                    sketched_at = sketched_at or now
                    written = await offsets.ends(sketches)
                    if judged(written, await offsets.committed(self.judge_group)):
                        break
                if service.process.poll() is not None:
                    raise RuntimeError(f"the drift process exited:\n{service.log_tail()}")
                if now > deadline:
                    raise TimeoutError(f"{remaining:,} of {total:,} records still unconsumed")
                await asyncio.sleep(POLL_SECONDS)
        assert first is not None and sketched_at is not None
        cpu = {name: meter.stop() for name, meter in meters.items()}
        machine_cpu = machine.stop()
        service.wait_healthy("/readyz", timeout=READY_TIMEOUT_SECONDS)
        metrics = scrape_prometheus(service.base_url)
        seconds = now - first[0]
        records = total - first[1]
        measured_requests = round(records * requests / total)
        counters = {name: int(metrics.get(METRIC + name, 0.0)) for name in COUNTERS}
        return {
            "streams": list(self.streams),
            "records": total,
            "requests": requests,
            "measured_records": records,
            "measured_requests": measured_requests,
            "seconds": round(seconds, 3),
            "sketcher_seconds": round(sketched_at - first[0], 3),
            "judge_tail_seconds": round(now - sketched_at, 3),
            "seconds_from_launch": round(now - started, 3),
            "first_commit_after_seconds": round(first[0] - started, 3),
            "requests_per_second": round(measured_requests / seconds, 1),
            "records_per_second": round(records / seconds, 1),
            "sketches_per_second": round(
                counters["sketches_applied_total"] * records / total / seconds, 1
            ),
            "counters": counters,
            "every_record_measured": counters["records_unreadable_total"] == 0
            and counters["records_without_reference_total"] == 0
            and counters["records_not_measured_total"] == 0,
            "cpu_seconds": cpu,
            **cpu_breakdown(
                cpu, seconds=seconds, messages=max(1, measured_requests), machine=machine_cpu
            ),
        }


def judged(ends: Mapping[TopicPartition, int], committed: Mapping[TopicPartition, int]) -> bool:
    """The judge has consumed every sketch written so far. Sketches are written in
    transactions, so each partition ends with a commit marker the judge never commits
    past: the last offset is the marker's, one above what the judge commits."""
    return all(end == 0 or committed.get(tp, 0) >= end - 1 for tp, end in ends.items())


LOOPS = {
    "sketcher": "SketchProcess.__call__",
    "judge": "JudgeProcess.__call__",
    "fetching": "AIOKafkaConsumer.getmany",
}
"""Frames whose samples say which part of the process was at work (py-spy's names)."""


def loop_shares(folded: str) -> dict[str, float]:
    """Each part's share of the process's samples (folded stacks, `frame;frame;... count`):
    the sketcher's and the judge's batches, and fetching records for either."""
    samples = dict.fromkeys(LOOPS, 0)
    total = 0
    for stack, count in folded_stacks(folded):
        total += count
        for name, frame in LOOPS.items():
            if frame in stack:
                samples[name] += count
    return {name: round(count / total, 3) if total else 0.0 for name, count in samples.items()}


def per_feature_event(drained: dict[str, Any], features: int) -> dict[str, Any]:
    """The drift process's CPU per request (with whatever else it reads for it), per
    stream record and per feature-event (one input value of one request)."""
    cpu = drained["cpu_seconds"]["drift"]
    requests = max(1, drained["measured_requests"])
    return {
        "features": features,
        "drift_cpu_us_per_request": round(cpu / requests * 1e6, 2),
        "drift_cpu_us_per_record": round(cpu / max(1, drained["measured_records"]) * 1e6, 2),
        "drift_cpu_us_per_feature_event": round(cpu / (requests * features) * 1e6, 3),
    }


def against_worker(drained: dict[str, Any], worker: dict[str, Any]) -> dict[str, Any]:
    """The drain rate over the worker's, and the same from CPU per request alone: what the
    ratio would be with a core each (the rates depend on what else the 2 cores did)."""
    compared = {"ratio_to_worker": round(drained["requests_per_second"] / worker["per_second"], 3)}
    worker_cost = worker.get("cpu_us_per_prediction")
    own_cost = drained["cpu_us_per_message"]["drift"]
    if worker_cost and own_cost:
        compared["cpu_ratio_to_worker"] = round(worker_cost / own_cost, 3)
    return compared


def run_drift_throughput(
    stack: BenchStack, plan: DriftThroughputPlan, requests: list[OutgoingRecord]
) -> dict[str, Any]:
    """Each configuration on fresh topics; right before each drain, one inference worker
    answers `requests` (the bench model's, 20 features) end to end: the rate compared."""
    features = len(stack.model.feature_names)
    result: dict[str, Any] = {
        "model_features": features,
        "requests": plan.requests,
        "worker_requests": len(requests),
        "cpu_count": os.cpu_count(),
        "configurations": {},
    }
    for name in plan.configurations:
        progress(f"   drift on {name}")
        run = DriftRun(stack, stack.prefix(f"drift{len(result['configurations'])}"), STREAMS[name])
        try:
            figures = _run_configuration(stack, plan, run, requests, features)
        except Exception as error:  # one configuration failing does not hide the other
            figures = {"error": f"{type(error).__name__}: {error}"}
            progress(f"   {name}: failed: {figures['error'][:300]}")
        result["configurations"][name] = figures
    return result


def _run_configuration(
    stack: BenchStack,
    plan: DriftThroughputPlan,
    run: DriftRun,
    requests: list[OutgoingRecord],
    features: int,
) -> dict[str, Any]:
    asyncio.run(run.create_topics())
    progress(f"   publishing {plan.requests:,} requests to {', '.join(run.streams)}")
    fill_seconds = asyncio.run(run.fill(stack.model, total=plan.requests))
    worker = worker_reference(run_throughput(stack, requests, label=f"{run.prefix[-5:-1]}w"))
    progress(f"   the worker, just before: {worker['per_second']:,.0f} requests/s")
    service = run.start_service()
    try:
        drained = asyncio.run(_drain(run))
        memory = process_memory(service.pid)
        if stack.profile_dir is not None:
            folded = stack.profile_dir / f"{run.prefix}{DRAIN_LABEL}-drift.folded"
            if folded.exists():
                drained["profiled_shares"] = loop_shares(folded.read_text())
    finally:
        exit_codes = stack.stop([service])
    drained |= per_feature_event(drained, features) | against_worker(drained, worker)
    drained["memory"] = memory
    progress(
        f"   drained {drained['requests_per_second']:,.0f} requests/s "
        f"= {drained['ratio_to_worker']:.2f}x the worker; "
        f"{drained['drift_cpu_us_per_request']:.0f} µs CPU per request, "
        f"{drained['drift_cpu_us_per_feature_event']:.2f} µs per feature-event; "
        f"RSS {memory.get('rss_mb', 0):,.0f} MB"
    )
    return {
        "worker": worker,
        "fill_seconds": round(fill_seconds, 1),
        "drain": drained,
        "exit_codes": list(exit_codes.values()),
    }


async def _drain(run: DriftRun) -> dict[str, Any]:
    async with Offsets(run.stack.bootstrap) as offsets:
        return await run.drain(offsets, label=DRAIN_LABEL)
