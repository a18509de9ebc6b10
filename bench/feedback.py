"""The feedback join under load (`feedback` scenario): how fast one `modelbus feedback run`
process ingests what an inference worker writes, how fast it joins feedback, and its RSS
with a million predictions retained.

The topics are filled before the process starts (requests and their predictions, encoded
as the gateway and the worker encode them), so the process, not the bench, sets the pace.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.kafka_io import make_producer, send_all
from bench.measure import CpuMeter, MachineCpuMeter, cpu_breakdown, scrape_prometheus
from bench.profiling import sampled
from bench.report import progress
from bench.stack import PARTITIONS, BenchStack, venv_command
from bench.throughput import run_throughput
from bench.workload import MODEL_NAME, BenchModel, distinct_inputs, encode_request, request_for
from devtools.ports import free_port
from devtools.postgres_server import PostgresServer
from devtools.service_process import ServiceProcess, clean_env
from services.feedback.adapters.tables import FEEDBACK as FEEDBACK_ROWS
from services.feedback.adapters.tables import LABELS as LABEL_ROWS
from services.feedback.adapters.tables import PREDICTIONS as PREDICTION_ROWS
from services.inference.adapters.kafka_records import PredictionEncoder
from services.inference.adapters.tracing import random_traceparent
from services.inference.domain.answers import Answer, Classified
from shared.contracts import Feedback
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import OutgoingRecord, encode
from shared.topics import DEAD_LETTERS, FEEDBACK, LABELS, MODEL_EVENTS, PREDICTIONS, REQUESTS

CHUNK = 20_000
"""Requests (and as many predictions) encoded and sent at a time: a million pairs at once
would hold gigabytes in the bench process."""
POLL_SECONDS = 0.05
READY_TIMEOUT_SECONDS = 120.0
DRAIN_TIMEOUT_SECONDS = 1800.0
PREDICTION_VERSION = 1
FEEDBACK_SOURCE = "bench"
MB = 1024 * 1024


@dataclass(frozen=True)
class FeedbackPlan:
    """How much the scenario feeds the feedback process."""

    pairs: int
    """Requests with their predictions in the topics before the process starts."""
    feedback: int
    """Explicit labels published for stored requests once the ingest is done."""
    retained: int
    """Predictions the store holds when RSS is read at the end (SQLite run only)."""
    backends: tuple[str, ...] = ("sqlite", "postgresql")


# -- the records --------------------------------------------------------------------------


def served_pairs(
    model: BenchModel, *, run: str, start: int, count: int, encoder: PredictionEncoder
) -> tuple[list[OutgoingRecord], list[OutgoingRecord]]:
    """`count` requests `<run>-<n>` and the production prediction of each, as the worker
    writes it (the real model's probabilities through the worker's own encoder)."""
    rows = distinct_inputs(model.features, count, seed=start + 1)
    probabilities = model.estimator.predict_proba(rows)
    classes = [label.item() for label in model.estimator.classes_]
    texts = [str(label) for label in classes]
    now = datetime.now(UTC)
    time_header = now.isoformat().encode()
    requests: list[OutgoingRecord] = []
    predictions: list[OutgoingRecord] = []
    for offset, (row, row_probabilities) in enumerate(
        zip(rows, probabilities.tolist(), strict=True)
    ):
        request_id = f"{run}-{start + offset}"
        requests.append(encode_request(request_for(model, row, request_id)))
        answer = Answer(
            request_id=request_id,
            model=MODEL_NAME,
            version=PREDICTION_VERSION,
            variant="production",
            output=Classified(
                classes[int(np.argmax(row_probabilities))],
                dict(zip(texts, row_probabilities, strict=True)),
            ),
            error=None,
            latency_ms=1.0,
            routing_key=None,
            callback_url=None,
            created_at=now,
        )
        predictions.append(
            encoder.encode(answer, time=time_header, traceparent=random_traceparent())
        )
    return requests, predictions


def chunked(total: int, *, first: int = 0, size: int = CHUNK) -> Iterator[tuple[int, int]]:
    """(start, count) of each chunk of the ids `first` .. `first + total - 1`."""
    for start in range(first, first + total, size):
        yield start, min(size, first + total - start)


def feedback_records(
    request_ids: Sequence[str], classes: Sequence[int | str], *, seed: int
) -> list[OutgoingRecord]:
    """An explicit label (a class drawn at random) for each request, keyed by its id as
    the gateway publishes feedback."""
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(classes), size=len(request_ids)).tolist()
    return [
        encode(
            FEEDBACK,
            Feedback(request_id=request_id, label=classes[index], source=FEEDBACK_SOURCE),
            key=request_id,
            source="/modelbus/bench",
            topic=FEEDBACK.name,
        )
        for request_id, index in zip(request_ids, chosen, strict=True)
    ]


# -- where the process is -----------------------------------------------------------------


def backlog(ends: Mapping[TopicPartition, int], committed: Mapping[TopicPartition, int]) -> int:
    """Records of `ends`' partitions the group has not committed yet (none committed: all)."""
    return sum(max(0, end - committed.get(tp, 0)) for tp, end in ends.items())


def memory_of(status: str) -> dict[str, float]:
    """Resident memory now and at its peak (MB) from /proc/<pid>/status."""
    found: dict[str, float] = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            kilobytes = int(value.split()[0])
            found["rss_mb" if name == "VmRSS" else "peak_rss_mb"] = round(kilobytes / 1024, 1)
    return found


def process_memory(pid: int) -> dict[str, float]:
    return memory_of(Path(f"/proc/{pid}/status").read_text())


class Offsets:
    """End offsets of topics and what a consumer group has committed on them."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)

    async def __aenter__(self) -> Offsets:
        await self._consumer.start()
        await self._admin.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._admin.close()
        await self._consumer.stop()

    async def ends(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return dict(await self._consumer.end_offsets(list(partitions)))

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        offsets = await self._admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def partitions_of(topic: str, count: int) -> list[TopicPartition]:
    return [TopicPartition(topic, partition) for partition in range(count)]


@dataclass
class Window:
    """A measured stretch: wall time, records done, CPU of the parts."""

    seconds: float
    records: int
    cpu: dict[str, float]
    machine_cpu: float


class Meters:
    """CPU of the feedback process, the broker, the bench and the database server (if
    any), and of the whole machine."""

    def __init__(self, stack: BenchStack, service: ServiceProcess, database: int | None) -> None:
        self.meters = {
            "feedback": CpuMeter([service.pid]),
            "broker": CpuMeter([stack.broker_pid]),
            "bench_process": CpuMeter([os.getpid()], descendants=False),
        }
        if database is not None:
            self.meters["postgresql"] = CpuMeter([database])
        self.machine = MachineCpuMeter()

    def start(self) -> None:
        self.machine.start()
        for meter in self.meters.values():
            meter.start()

    def stop(self) -> tuple[dict[str, float], float]:
        cpu = {name: meter.stop() for name, meter in self.meters.items()}
        return cpu, self.machine.stop()


# -- one backend --------------------------------------------------------------------------


@dataclass
class FeedbackRun:
    """One feedback process on fresh topics and an empty store."""

    stack: BenchStack
    prefix: str
    database_url: str
    database_file: Path | None
    database_pid: int | None
    """The PostgreSQL server's postmaster (its backends are its children); None for SQLite."""
    service: ServiceProcess | None = None

    @property
    def group(self) -> str:
        return f"{self.prefix}feedback"

    def topic(self, name: str) -> str:
        return self.prefix + name

    async def create_topics(self) -> None:
        bootstrap = self.stack.bootstrap
        await ensure_topics(
            bootstrap,
            prefix=self.prefix,
            specs=[REQUESTS, PREDICTIONS],
            partitions_override=PARTITIONS,
        )
        await ensure_topics(
            bootstrap, prefix=self.prefix, specs=[FEEDBACK, LABELS, DEAD_LETTERS, MODEL_EVENTS]
        )

    async def fill(self, model: BenchModel, *, run: str, first: int, total: int) -> float:
        """Publish `total` request/prediction pairs; returns the seconds it took."""
        started = time.perf_counter()
        encoder = PredictionEncoder(topic=self.topic(PREDICTIONS.name))
        producer: AIOKafkaProducer = make_producer(self.stack.bootstrap)
        await producer.start()
        try:
            for start, count in chunked(total, first=first):
                requests, predictions = served_pairs(
                    model, run=run, start=start, count=count, encoder=encoder
                )
                acks = await send_all(producer, self.topic(REQUESTS.name), requests)
                acks += await send_all(producer, self.topic(PREDICTIONS.name), predictions)
                await asyncio.gather(*acks)
        finally:
            await producer.stop()
        return time.perf_counter() - started

    def start_service(self) -> ServiceProcess:
        port = free_port()
        env = clean_env(
            {
                "MODELBUS_KAFKA_BOOTSTRAP": self.stack.bootstrap,
                "MODELBUS_TOPIC_PREFIX": self.prefix,
                "MODELBUS_FEEDBACK_DATABASE_URL": self.database_url,
                "MODELBUS_CONSUMER_GROUP": self.group,
                "MODELBUS_FEEDBACK_HEALTH_PORT": str(port),
                # No registry key: every model gets the default feedback policy.
            }
        )
        self.service = self.stack.launch(
            f"feedback {self.prefix}",
            [str(venv_command("modelbus")), "feedback", "run"],
            env=env,
            log_name=f"{self.prefix}feedback.log",
            base_url=f"http://127.0.0.1:{port}",
        )
        return self.service

    async def consume_everything(self, offsets: Offsets, *, label: str) -> dict[str, Any]:
        """Wait until the group has committed every record of `requests` and `predictions`;
        measured from the first commit seen to the last (a steady rate, without start-up)."""
        service = self.service
        assert service is not None
        partitions = partitions_of(self.topic(REQUESTS.name), PARTITIONS) + partitions_of(
            self.topic(PREDICTIONS.name), PARTITIONS
        )
        ends = await offsets.ends(partitions)
        total = sum(ends.values())
        meters = Meters(self.stack, service, self.database_pid)
        ready = time.perf_counter()
        first: tuple[float, int] | None = None
        deadline = ready + DRAIN_TIMEOUT_SECONDS
        with sampled(self.stack.profile_dir, self.prefix + label, [("feedback", service.pid)]):
            while True:
                remaining = backlog(ends, await offsets.committed(self.group))
                now = time.perf_counter()
                if first is None and remaining < total:
                    first = (now, total - remaining)
                    meters.start()
                if remaining == 0:
                    break
                if service.process.poll() is not None:
                    raise RuntimeError(f"the feedback process exited:\n{service.log_tail()}")
                if now > deadline:
                    raise TimeoutError(f"{remaining:,} of {total:,} records still unconsumed")
                await asyncio.sleep(POLL_SECONDS)
        assert first is not None
        cpu, machine = meters.stop()
        seconds = now - first[0]
        records = total - first[1]
        return {
            "records": total,
            "measured_records": records,
            "seconds": round(seconds, 3),
            "seconds_from_ready": round(now - ready, 3),
            "records_per_second": round(records / seconds, 1),
            "predictions_per_second": round(records / 2 / seconds, 1),
            "cpu_seconds": cpu,
            **cpu_breakdown(cpu, seconds=seconds, messages=max(1, records // 2), machine=machine),
        }

    async def join(self, offsets: Offsets, records: list[OutgoingRecord]) -> dict[str, Any]:
        """Publish the feedback and wait for one label per record on `labels`."""
        service = self.service
        assert service is not None
        labels = partitions_of(self.topic(LABELS.name), LABELS.partitions)
        letters = partitions_of(self.topic(DEAD_LETTERS.name), DEAD_LETTERS.partitions)
        before = sum((await offsets.ends(labels)).values())
        expected = before + len(records)
        metrics_before = scrape_prometheus(service.base_url)
        meters = Meters(self.stack, service, self.database_pid)
        producer = make_producer(self.stack.bootstrap)
        await producer.start()
        try:
            with sampled(self.stack.profile_dir, self.prefix + "join", [("feedback", service.pid)]):
                meters.start()
                started = time.perf_counter()
                acks = await send_all(producer, self.topic(FEEDBACK.name), records)
                await asyncio.gather(*acks)
                published = time.perf_counter()
                deadline = started + DRAIN_TIMEOUT_SECONDS
                while (labelled := sum((await offsets.ends(labels)).values())) < expected:
                    if service.process.poll() is not None:
                        raise RuntimeError(f"the feedback process exited:\n{service.log_tail()}")
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"{expected - labelled:,} labels missing")
                    await asyncio.sleep(POLL_SECONDS)
                done = time.perf_counter()
                cpu, machine = meters.stop()
        finally:
            await producer.stop()
        metrics = scrape_prometheus(service.base_url)
        joined = _delta(metrics, metrics_before, "feedback_joined_total")
        seconds = done - started
        return {
            "feedback": len(records),
            "labels": labelled - before,
            "joined": int(joined),
            "refused": int(_delta(metrics, metrics_before, "feedback_refused_total")),
            "dead_letters": sum((await offsets.ends(letters)).values()),
            "seconds": round(seconds, 3),
            "publish_seconds": round(published - started, 3),
            "joined_per_second": round(joined / seconds, 1),
            "cpu_seconds": cpu,
            **cpu_breakdown(cpu, seconds=seconds, messages=max(1, int(joined)), machine=machine),
        }

    def store_figures(self) -> dict[str, Any]:
        """Rows the store holds, the database's size, and the process's memory."""
        assert self.service is not None
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                counts = {
                    name: connection.execute(
                        sa.select(sa.func.count()).select_from(table)
                    ).scalar_one()
                    for name, table in (
                        ("predictions", PREDICTION_ROWS),
                        ("feedback", FEEDBACK_ROWS),
                        ("labels", LABEL_ROWS),
                    )
                }
                if engine.dialect.name == "postgresql":
                    size = connection.execute(
                        sa.text("SELECT pg_database_size(current_database())")
                    ).scalar_one()
                else:
                    size = _sqlite_size(self.database_file)
        finally:
            engine.dispose()
        return {
            "rows": counts,
            "database_mb": round(size / MB, 1),
            **process_memory(self.service.pid),
        }


def _delta(after: dict[str, float], before: dict[str, float], name: str) -> float:
    key = "modelbus_feedback_" + name
    return after.get(key, 0.0) - before.get(key, 0.0)


def _sqlite_size(path: Path | None) -> int:
    """The database file with its write-ahead log (what the store holds on disk)."""
    if path is None:
        return 0
    return sum(
        candidate.stat().st_size
        for candidate in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        )
        if candidate.exists()
    )


# -- the scenario -------------------------------------------------------------------------


def run_feedback(
    stack: BenchStack, plan: FeedbackPlan, requests: list[OutgoingRecord]
) -> dict[str, Any]:
    """Each backend in turn on fresh topics. Right before each ingest, one inference worker
    answers `requests` end to end: the rate the ingest is compared with, measured next to
    it (this machine's speed drifts over minutes)."""
    result: dict[str, Any] = {
        "pairs": plan.pairs,
        "feedback": plan.feedback,
        "retained_target": plan.retained,
        "worker_requests": len(requests),
        "backends": {},
    }
    for backend in plan.backends:
        progress(f"   feedback on {backend}")
        try:
            with feedback_database(stack, backend) as (url, path, pid):
                run = FeedbackRun(stack, stack.prefix(f"fb{backend[:2]}"), url, path, pid)
                figures = _run_backend(stack, plan, backend, run, requests)
        except Exception as error:  # one backend failing does not hide the other's figures
            figures = {"error": f"{type(error).__name__}: {error}"}
            progress(f"   {backend}: failed: {figures['error'][:300]}")
        if "ingest" in figures:
            figures["ingest"] |= ingest_against_worker(figures["ingest"], figures["worker"])
        result["backends"][backend] = figures
    return result


def ingest_against_worker(ingest: dict[str, Any], worker: dict[str, Any]) -> dict[str, Any]:
    """The ingest rate over the worker's, and the same from CPU per prediction alone: what
    the ratio would be if each process had a core to itself (the rates depend on what
    else the 2 cores were doing at the time)."""
    compared = {
        "ratio_to_worker": round(ingest["predictions_per_second"] / worker["per_second"], 3)
    }
    worker_cost = worker.get("cpu_us_per_prediction")
    own_cost = ingest["cpu_us_per_message"]["feedback"]
    if worker_cost and own_cost:
        compared["cpu_ratio_to_worker"] = round(worker_cost / own_cost, 3)
    return compared


def worker_reference(run: dict[str, Any]) -> dict[str, Any]:
    """What the ingest is compared with from one worker's end-to-end run."""
    return {
        "per_second": run["per_second"],
        "cpu_us_per_prediction": run["cpu_us_per_message"]["workers"],
        "requests": run["messages"],
        "every_request_answered_once": run["check"]["every_request_answered_once"],
    }


def _run_backend(
    stack: BenchStack,
    plan: FeedbackPlan,
    backend: str,
    run: FeedbackRun,
    requests: list[OutgoingRecord],
) -> dict[str, Any]:
    asyncio.run(run.create_topics())
    progress(f"   publishing {plan.pairs:,} requests and their predictions")
    fill_seconds = asyncio.run(run.fill(stack.model, run="fb", first=0, total=plan.pairs))
    ids = [f"fb-{index}" for index in range(plan.feedback)]
    classes = [label.item() for label in stack.model.estimator.classes_]
    feedback = feedback_records(ids, classes, seed=7)
    worker = worker_reference(run_throughput(stack, requests, label=f"fbw{backend[:2]}"))
    progress(f"   the worker, just before: {worker['per_second']:,.0f} predictions/s")
    service = run.start_service()
    try:
        service.wait_healthy("/readyz", timeout=READY_TIMEOUT_SECONDS)
        figures = asyncio.run(_measure(run, plan, backend, feedback))
    finally:
        exit_codes = stack.stop([service])
    return {
        "worker": worker,
        "fill_seconds": round(fill_seconds, 1),
        **figures,
        "exit_codes": list(exit_codes.values()),
    }


async def _measure(
    run: FeedbackRun, plan: FeedbackPlan, backend: str, feedback: list[OutgoingRecord]
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    async with Offsets(run.stack.bootstrap) as offsets:
        ingest = await run.consume_everything(offsets, label="ingest")
        figures["ingest"] = ingest | {"store": run.store_figures()}
        progress(
            f"   ingest: {ingest['predictions_per_second']:,.0f} predictions/s "
            f"({ingest['records_per_second']:,.0f} records/s), feedback process "
            f"{ingest['cpu_us_per_message']['feedback']:.0f} µs CPU per prediction"
        )
        join = await run.join(offsets, feedback)
        figures["join"] = join | {"store": run.store_figures()}
        progress(
            f"   join: {join['joined_per_second']:,.0f} feedback/s, "
            f"{join['cpu_us_per_message']['feedback']:.0f} µs CPU per label"
        )
        more = plan.retained - plan.pairs
        if backend == "sqlite" and more > 0:
            progress(f"   publishing {more:,} more pairs ({plan.retained:,} retained)")
            started = time.perf_counter()
            fill_seconds = await run.fill(run.stack.model, run="fb", first=plan.pairs, total=more)
            drained = await run.consume_everything(offsets, label="retained")
            figures["retained"] = {
                "added_pairs": more,
                "fill_seconds": round(fill_seconds, 1),
                "seconds": round(time.perf_counter() - started, 1),
                "store": run.store_figures(),
            }
            figures["retained"]["drain_after_fill"] = {
                key: drained[key] for key in ("seconds", "measured_records", "records_per_second")
            }
            store = figures["retained"]["store"]
            progress(
                f"   {store['rows']['predictions']:,} predictions retained: RSS "
                f"{store['rss_mb']:,.0f} MB (peak {store['peak_rss_mb']:,.0f}), database "
                f"{store['database_mb']:,.0f} MB"
            )
    return figures


@contextmanager
def feedback_database(
    stack: BenchStack, backend: str
) -> Iterator[tuple[str, Path | None, int | None]]:
    """An empty feedback store: a SQLite file in the run's folder, or a database on a
    private PostgreSQL server started by the project's own script (infra/postgres); with
    the server's pid, so its CPU is counted."""
    if backend == "sqlite":
        path = stack.work_dir / f"feedback-{stack.run_id}.db"
        yield f"sqlite:///{path}", path, None
        return
    progress("   starting PostgreSQL (infra/postgres/postgres.sh)")
    server = PostgresServer.start(stack.work_dir / "postgres")
    try:
        url = server.create_database("bench_feedback")
        yield url, None, postmaster_pid(url)
    finally:
        server.stop()


def postmaster_pid(url: str) -> int:
    """The server's main process: the parent of the backend serving a connection (the
    script may keep the data directory elsewhere, so its postmaster.pid is not at hand)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            backend = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    finally:
        engine.dispose()
    for line in Path(f"/proc/{backend}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise RuntimeError(f"no parent process for PostgreSQL backend {backend}")


def feedback_headline(result: dict[str, Any]) -> str:
    """One progress line per backend: ingest against the worker, join rate, memory."""
    parts = []
    for backend, figures in result["backends"].items():
        if "error" in figures:
            parts.append(f"{backend} failed: {figures['error'][:200]}")
            continue
        ingest, join = figures["ingest"], figures["join"]
        line = (
            f"{backend}: ingest {ingest['predictions_per_second']:,.0f} predictions/s "
            f"= {ingest['ratio_to_worker']:.2f}x the worker, join "
            f"{join['joined_per_second']:,.0f}/s"
        )
        retained = figures.get("retained")
        if retained:
            store = retained["store"]
            line += (
                f", RSS {store['rss_mb']:,.0f} MB with {store['rows']['predictions']:,} predictions"
            )
        parts.append(line)
    return "; ".join(parts)
