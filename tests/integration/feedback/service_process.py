"""The feedback service as a real process the crash test starts, SIGKILLs and starts again,
and the probes that see what it left behind: the store, committed offsets, topic contents."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devtools.ports import free_port
from services.feedback.adapters.tables import FEEDBACK, LABELS, PREDICTIONS, REQUESTS
from shared.db import make_engine
from shared.kafka.codec import decode
from shared.topics import FEEDBACK as FEEDBACK_TOPIC
from shared.topics import PREDICTIONS as PREDICTIONS_TOPIC
from shared.topics import REQUESTS as REQUESTS_TOPIC
from shared.topics import TopicSpec

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKER = "from services.feedback.entrypoints.worker import run; run()"
RECORDS_READ = re.compile(r"^modelbus_feedback_records_read_total (\d+)", re.MULTILINE)


@dataclass
class Incarnation:
    """One run of the process, from spawn to kill, with what was seen of it."""

    number: int
    log: Path
    spawned_at: float
    ready_after: float | None = None
    progress_after: float | None = None
    records_read: int = 0
    """Records the process had joined when last asked (just before it was killed)."""


@dataclass
class FeedbackProcess:
    """Runs `services.feedback.entrypoints.worker` with `MODELBUS_*` settings, one at a time."""

    settings: dict[str, str]
    workdir: Path
    incarnations: list[Incarnation] = field(default_factory=list)
    _process: asyncio.subprocess.Process | None = None
    _health: str = ""
    _http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5))

    async def start(self, *, timeout: float = 40.0) -> Incarnation:
        """Spawn the process and wait until it answers ready."""
        assert self._process is None, "the previous process is still running"
        port = free_port()
        self._health = f"http://127.0.0.1:{port}"
        incarnation = Incarnation(
            number=len(self.incarnations) + 1,
            log=self.workdir / f"feedback-{len(self.incarnations) + 1}.log",
            spawned_at=time.monotonic(),
        )
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("MODELBUS_")}
        env = inherited | {
            f"MODELBUS_{name.upper()}": value
            for name, value in (self.settings | {"feedback_health_port": str(port)}).items()
        }
        with incarnation.log.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                WORKER,
                cwd=self.workdir,
                env=env | {"PYTHONPATH": str(REPO_ROOT)},
                stdout=log,
                stderr=log,
            )
        self.incarnations.append(incarnation)
        await self._until(self._ready, timeout, f"incarnation {incarnation.number} to be ready")
        incarnation.ready_after = time.monotonic() - incarnation.spawned_at
        return incarnation

    async def wait_for_progress(self, *, timeout: float = 40.0) -> int:
        """Wait until this incarnation has joined some records (its first batch is stored)."""
        incarnation = self.incarnations[-1]
        read = await self._until(
            self.records_read, timeout, f"incarnation {incarnation.number} to join records"
        )
        incarnation.progress_after = time.monotonic() - incarnation.spawned_at
        return int(read)

    async def records_read(self) -> int:
        """Records the running process has joined and stored so far (its metrics)."""
        try:
            response = await self._http.get(f"{self._health}/metrics")
        except httpx.HTTPError:
            return 0
        found = RECORDS_READ.search(response.text)
        read = int(found.group(1)) if found else 0
        self.incarnations[-1].records_read = read
        return read

    async def kill(self) -> None:
        """SIGKILL now: no batch finished, no offsets committed, no group left, no cleanup."""
        process = self._require_running()
        await self.records_read()
        process.send_signal(signal.SIGKILL)
        await self._reap(process)

    async def kill_when_stored(self, database_url: str, *, timeout: float = 20.0) -> None:
        """SIGKILL the moment the store commits the next batch's rows, before the process
        has produced its labels or committed its offsets: the restart must replay it.

        A watcher process of its own sends the signal: a thread of this busy process
        could wait milliseconds for the interpreter, time enough for the labels to go."""
        process = self._require_running()
        await self.records_read()
        watcher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.feedback.kill_on_commit",
            str(process.pid),
            database_url,
            str(timeout),
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert watcher.stdout is not None
        armed = await watcher.stdout.readline()
        assert armed == b"armed\n", f"the watcher did not start: {armed!r}"
        if await watcher.wait() != 0:
            raise AssertionError(f"the store took no new rows in {timeout:.0f}s")
        await self._reap(process)

    async def _reap(self, process: asyncio.subprocess.Process) -> None:
        returncode = await process.wait()
        self._process = None
        assert returncode == -signal.SIGKILL, f"the process exited {returncode} before the kill"

    async def stop(self, *, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the orderly stop."""
        process = self._require_running()
        await self.records_read()
        process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(process.wait(), timeout)
        self._process = None
        return returncode

    async def ensure_gone(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None
        await self._http.aclose()

    def _require_running(self) -> asyncio.subprocess.Process:
        process = self._process
        assert process is not None, "no process is running"
        if process.returncode is not None:
            raise AssertionError(
                f"the feedback process died on its own (exit {process.returncode}):\n"
                + self.incarnations[-1].log.read_text()[-3000:]
            )
        return process

    async def _ready(self) -> bool:
        self._require_running()
        try:
            return (await self._http.get(f"{self._health}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _until(self, condition: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := await condition()):
            self._require_running()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            await asyncio.sleep(0.01)
        return value


# -- what Kafka holds ----------------------------------------------------------------------


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets: where a restarted member resumes."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    assert partitions, f"no partitions found for {topics}"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


async def read_to_end(bootstrap: str, topic: str, *, timeout: float = 30.0) -> list[Any]:
    """Every record `topic` holds now, from every partition (no count or timeout decides)."""
    ends = await end_offsets(bootstrap, [topic])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


# -- what the store holds ------------------------------------------------------------------


@dataclass(frozen=True)
class StoreContents:
    """The join's rows by key, as committed."""

    requests: frozenset[str]
    predictions: frozenset[tuple[str, str]]
    feedback: dict[str, str]
    """Each feedback id and its state."""
    labels: list[dict[str, Any]]
    """The standing labels, one row per (request, variant)."""

    @property
    def rows(self) -> int:
        return len(self.requests) + len(self.predictions) + len(self.feedback)


def store_contents(database_url: str) -> StoreContents:
    """What the store holds (read while no process writes, or while it idles)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            requests = connection.execute(sa.select(REQUESTS.c.request_id)).scalars()
            predictions = connection.execute(
                sa.select(PREDICTIONS.c.request_id, PREDICTIONS.c.variant)
            )
            feedback = connection.execute(sa.select(FEEDBACK.c.feedback_id, FEEDBACK.c.state))
            labels = connection.execute(sa.select(LABELS))
            return StoreContents(
                requests=frozenset(requests),
                predictions=frozenset((row.request_id, row.variant) for row in predictions),
                feedback={row.feedback_id: row.state for row in feedback},
                labels=[dict(row._mapping) for row in labels],
            )
    finally:
        engine.dispose()


# -- where the store's rows came from --------------------------------------------------------

Positions = dict[str, list[tuple[TopicPartition, int, Hashable]]]
"""Per consumed topic: the partition, offset and store key of each of its records."""


async def topic_positions(bootstrap: str, prefix: str) -> Positions:
    """Read the three consumed topics to their ends: which record made which store row."""
    keys: dict[str, Callable[[Any], Hashable]] = {
        REQUESTS_TOPIC.name: lambda request: request.request_id,
        PREDICTIONS_TOPIC.name: lambda prediction: (prediction.request_id, prediction.variant),
        FEEDBACK_TOPIC.name: lambda feedback: feedback.feedback_id,
    }
    positions: Positions = {}
    specs: tuple[TopicSpec[Any], ...] = (REQUESTS_TOPIC, PREDICTIONS_TOPIC, FEEDBACK_TOPIC)
    for spec in specs:
        key = keys[spec.name]
        positions[spec.name] = [
            (
                TopicPartition(record.topic, record.partition),
                record.offset,
                key(decode(spec, record.value, record.headers)),
            )
            for record in await read_to_end(bootstrap, prefix + spec.name)
        ]
    return positions


def uncommitted_rows(
    contents: StoreContents, committed: dict[TopicPartition, int], positions: Positions
) -> int:
    """Stored rows whose every record lies past the committed offsets: a restart reads
    those records again, and the join must make nothing new of them."""
    stored: dict[str, Collection[Hashable]] = {
        REQUESTS_TOPIC.name: contents.requests,
        PREDICTIONS_TOPIC.name: contents.predictions,
        FEEDBACK_TOPIC.name: contents.feedback.keys(),
    }
    count = 0
    for topic, placed in positions.items():
        behind = {key for tp, offset, key in placed if offset < committed.get(tp, 0)}
        ahead = {key for tp, offset, key in placed if offset >= committed.get(tp, 0)}
        count += sum(1 for key in ahead - behind if key in stored[topic])
    return count
