"""The feedback service as a real process the crash test starts, SIGKILLs and starts again,
and the probes that see what it left behind: the store, committed offsets, topic contents."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.feedback.adapters.tables import FEEDBACK, LABELS, PREDICTIONS, REQUESTS
from shared.db import make_engine
from shared.kafka.codec import decode
from shared.topics import FEEDBACK as FEEDBACK_TOPIC
from shared.topics import PREDICTIONS as PREDICTIONS_TOPIC
from shared.topics import REQUESTS as REQUESTS_TOPIC
from shared.topics import TopicSpec
from tests.support.service_process import REPO_ROOT, ServiceProcess

WORKER = "from services.feedback.entrypoints.worker import run; run()"
RECORDS_READ = re.compile(r"^modelbus_feedback_records_read_total (\d+)", re.MULTILINE)


@dataclass(kw_only=True)
class FeedbackProcess(ServiceProcess):
    """`services.feedback.entrypoints.worker`, whose progress is records joined."""

    name: str = "feedback"
    code: str = WORKER
    health_port_setting: str = "feedback_health_port"
    progress: re.Pattern[str] = RECORDS_READ

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
