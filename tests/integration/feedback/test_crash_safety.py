"""SIGKILL the feedback process again and again mid-stream: no feedback lost, none counted twice.

The service runs as a real process on the real broker and database (SQLite, PostgreSQL)
while a few thousand requests, predictions (a third with a shadow) and feedback stream in.
It is killed at random points after each restart has joined something, and restarted.
At the end every feedback record is joined exactly once and the labels on `labels` and
in the store are those a hand computation of the stream gives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from devtools.kafka_broker import KafkaBroker
from shared.contracts import LabelledExample
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import decode
from shared.kafka.publisher import Publisher
from shared.topics import DEAD_LETTERS, FEEDBACK, LABELS, PREDICTIONS, REQUESTS
from tests.integration.feedback.conftest import JOIN_TOPICS
from tests.integration.feedback.crash_stream import (
    CrashStream,
    ExpectedLabel,
    crash_stream,
    utc_now,
)
from tests.integration.feedback.service_process import (
    FeedbackProcess,
    StoreContents,
    committed_offsets,
    end_offsets,
    read_to_end,
    store_contents,
    topic_positions,
    uncommitted_rows,
)

pytestmark = [pytest.mark.kafka]
log = logging.getLogger(__name__)

REQUESTS_SENT = 3000
KILLS = 5
STREAM_SECONDS = 45.0
"""How long the stream is paced over; what is left when the kills are done goes at once."""
CHUNK = 25
BATCH_RECORDS = 100
"""Small batches: a restart's backlog takes many transactions and commits to catch up,
so a kill soon after the first one lands with batches joined but not yet committed."""
MOST_SECONDS_AFTER_PROGRESS = 0.3
"""Each kill falls at a random moment up to this long after the restarted process joined
its first batch (mostly while it catches up on what came in while it was away): between
batches, in a transaction, or with outputs unacknowledged. Every other kill then waits
for the store's next commit and strikes a millisecond or two after it, which is mostly
before that batch's labels are produced and its offsets committed."""


@dataclass(frozen=True)
class Kill:
    """What was true right after one SIGKILL."""

    incarnation: int
    delay: float
    after_commit: bool
    """Killed right after the store committed a batch, rather than at once."""
    records_read: int
    """Records the killed process had joined when last asked, just before the kill."""
    sent: int
    committed: dict[TopicPartition, int]
    stored: StoreContents


@dataclass
class Outcome:
    """What the stream and the kills left behind once the last process caught up."""

    kills: list[Kill]
    labels: list[tuple[int, int, LabelledExample]]
    """Every record on `labels`, with its partition and offset."""
    letters: list[Any]
    stored: StoreContents
    replayed: list[int]
    """Per kill: stored rows whose records the restart read again."""


async def test_repeated_sigkills_mid_stream_lose_no_feedback_and_count_none_twice(
    kafka_broker: KafkaBroker, topic_prefix: str, database_url: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    await ensure_topics(bootstrap, prefix=topic_prefix, specs=JOIN_TOPICS, partitions_override=3)
    stream = crash_stream(random.Random(9), requests=REQUESTS_SENT, now=utc_now())
    seed = random.randrange(1 << 30)
    service = FeedbackProcess(
        settings={
            "kafka_bootstrap": bootstrap,
            "topic_prefix": topic_prefix,
            "feedback_database_url": database_url,
            "consumer_group": f"{topic_prefix}feedback",
            "registry_url": "",
            "consume_max_records": str(BATCH_RECORDS),
            "session_timeout_ms": "6000",  # the broker's least: a killed member leaves sooner
        },
        workdir=tmp_path,
    )
    started = time.monotonic()
    outcome = await stream_while_killing(
        service, stream, bootstrap, topic_prefix, database_url, random.Random(seed)
    )
    report(stream, service, outcome, seconds=time.monotonic() - started, seed=seed)

    # The kills came mid-stream: each killed process had joined some records, not all;
    # some kill left a batch stored but its offsets uncommitted, for the restart to replay;
    # and some feedback was still waiting for its prediction when a kill came.
    rows = stream.requests * 2 + stream.shadows + len(stream.feedback_ids)
    assert len(outcome.kills) == KILLS
    for kill in outcome.kills:
        context = f"{kill.incarnation=} {kill.records_read=} {kill.sent=} (seed {seed})"
        assert kill.records_read > 0, context
        assert kill.sent < len(stream.sends), context
        assert sum(kill.committed.values()) < len(stream.sends), context
        assert 0 < kill.stored.rows < rows, context
    assert [k.stored.rows for k in outcome.kills] == sorted(k.stored.rows for k in outcome.kills)
    assert any(outcome.replayed), f"no kill left a stored batch uncommitted (seed {seed})"
    assert any("pending" in kill.stored.feedback.values() for kill in outcome.kills)

    # No feedback lost, none counted twice: each feedback id stored once, and joined.
    stored = outcome.stored
    assert set(stored.feedback) == stream.feedback_ids
    assert set(stored.feedback.values()) == {"joined"}
    assert len(stored.requests) == stream.requests
    assert len(stored.predictions) == stream.requests + stream.shadows
    assert outcome.letters == [], "nothing was refused or left unmatched"

    # Every request with feedback has its label on `labels`, the hand-computed one (the
    # newest record per request and variant stands; a replay repeats a label, no more).
    latest = {}
    for _, _, example in sorted(outcome.labels, key=lambda item: item[:2]):
        latest[(example.request_id, example.variant)] = example
    assert set(latest) == set(stream.expected)
    for (request_id, variant), example in latest.items():
        assert example.label_id == f"{request_id}:{variant}:{example.feedback_id}"
        assert published(example) == stream.expected[(request_id, variant)], example

    # The store keeps one standing label per (request, variant): the same one.
    assert len(stored.labels) == len(stream.expected)
    for row in stored.labels:
        assert kept(row) == stream.expected[(row["request_id"], row["variant"])], row

    # The shadow is labelled by the same feedback and judged on its own answer.
    shadows = [label for (_, variant), label in stream.expected.items() if variant == "shadow"]
    assert {label.correct for label in shadows} == {True, False, None}


async def stream_while_killing(
    service: FeedbackProcess,
    stream: CrashStream,
    bootstrap: str,
    prefix: str,
    database_url: str,
    chance: random.Random,
) -> Outcome:
    """Stream while the process is killed and restarted KILLS times; then let it catch up."""
    group = service.settings["consumer_group"]
    publisher = Publisher(bootstrap, source="crash-test", topic_prefix=prefix)
    await publisher.start()
    streamed, rush = Streamed(), asyncio.Event()
    kills: list[Kill] = []
    streaming = asyncio.create_task(stream_paced(publisher, stream, streamed, rush=rush))
    try:
        await service.start()
        for number in range(1, KILLS + 1):
            await service.wait_for_progress()
            delay = chance.uniform(0.0, MOST_SECONDS_AFTER_PROGRESS)
            await asyncio.sleep(delay)
            after_commit = number % 2 == 0
            if after_commit:
                await service.kill_when_stored(database_url)
            else:
                await service.kill()
            kills.append(
                Kill(
                    incarnation=service.incarnations[-1].number,
                    delay=delay,
                    after_commit=after_commit,
                    records_read=service.incarnations[-1].records_read,
                    sent=streamed.sent,
                    committed=await committed_offsets(bootstrap, group),
                    stored=await asyncio.to_thread(store_contents, database_url),
                )
            )
            await service.start()
        rush.set()
        await service.wait_for_progress()
        await streaming
        await caught_up(service, bootstrap, group, prefix)
        assert await service.stop() == 0
    finally:
        rush.set()
        streaming.cancel()
        await asyncio.gather(streaming, return_exceptions=True)
        await service.ensure_gone()
        await publisher.stop()
    positions = await topic_positions(bootstrap, prefix)
    return Outcome(
        kills=kills,
        labels=[
            (record.partition, record.offset, decode(LABELS, record.value, record.headers))
            for record in await read_to_end(bootstrap, prefix + LABELS.name)
        ],
        letters=await read_to_end(bootstrap, prefix + DEAD_LETTERS.name),
        stored=await asyncio.to_thread(store_contents, database_url),
        replayed=[uncommitted_rows(kill.stored, kill.committed, positions) for kill in kills],
    )


@dataclass
class Streamed:
    sent: int = 0


async def stream_paced(
    publisher: Publisher, stream: CrashStream, progress: Streamed, *, rush: asyncio.Event
) -> None:
    """Send the stream in order over STREAM_SECONDS; the last chunk only once `rush` is set,
    and everything at once after it, so no kill can come after the stream has ended."""
    chunks = list(stream.chunks(CHUNK))
    pause = STREAM_SECONDS / len(chunks)
    for number, chunk in enumerate(chunks, start=1):
        if number == len(chunks):
            await rush.wait()
        await asyncio.gather(
            *(publisher.publish(send.topic, send.message, key=send.key) for send in chunk)
        )
        progress.sent += len(chunk)
        if not rush.is_set():
            await asyncio.sleep(pause)


def published(example: LabelledExample) -> ExpectedLabel:
    """A label record, in the terms of the hand computation."""
    return ExpectedLabel(
        version=example.version,
        predicted=example.predicted,  # type: ignore[arg-type]
        label=example.label,  # type: ignore[arg-type]
        refuted=example.refuted,  # type: ignore[arg-type]
        correct=example.correct,
        feedback_id=example.feedback_id,
        conflicting=example.conflicting,
    )


def kept(row: dict[str, Any]) -> ExpectedLabel:
    """A stored label row (label values are JSON text), in the same terms."""
    return ExpectedLabel(
        version=row["version"],
        predicted=json.loads(row["predicted"]),
        label=None if row["label"] is None else json.loads(row["label"]),
        refuted=None if row["refuted"] is None else json.loads(row["refuted"]),
        correct=row["correct"],
        feedback_id=row["feedback_id"],
        conflicting=row["conflicting"],
    )


async def caught_up(
    service: FeedbackProcess, bootstrap: str, group: str, prefix: str, timeout: float = 60
) -> None:
    """Wait until the group has committed everything: every batch's labels are acknowledged."""
    topics = [prefix + spec.name for spec in (REQUESTS, PREDICTIONS, FEEDBACK)]
    ends = await end_offsets(bootstrap, topics)
    deadline = time.monotonic() + timeout
    while True:
        committed = await committed_offsets(bootstrap, group)
        if all(committed.get(tp, 0) >= end for tp, end in ends.items()):
            return
        await service.records_read()  # fails at once if the process has died
        assert time.monotonic() < deadline, f"not caught up after {timeout:.0f}s: {committed}"
        await asyncio.sleep(0.2)


def report(
    stream: CrashStream, service: FeedbackProcess, outcome: Outcome, *, seconds: float, seed: int
) -> None:
    """What the restarts cost, for the service's README (run with --log-cli-level=INFO)."""
    log.info(
        "stream: %d records (%d requests, %d shadows, %d feedback ids, %d duplicates, "
        "%d early); %d kills in %.1f s (seed %d); stories %s",
        len(stream.sends),
        stream.requests,
        stream.shadows,
        len(stream.feedback_ids),
        stream.duplicates_sent,
        stream.early_feedback,
        len(outcome.kills),
        seconds,
        seed,
        stream.stories,
    )
    for kill, again in zip(outcome.kills, outcome.replayed, strict=True):
        log.info(
            "kill %d: %.2f s after the first batch%s; it joined %d records; committed "
            "offsets %d of %d sent; %d stored rows replayed by the restart; %d feedback "
            "waiting for its prediction",
            kill.incarnation,
            kill.delay,
            ", at the next store commit" if kill.after_commit else "",
            kill.records_read,
            sum(kill.committed.values()),
            kill.sent,
            again,
            list(kill.stored.feedback.values()).count("pending"),
        )
    for incarnation in service.incarnations:
        log.info(
            "incarnation %d: ready %.2f s after spawn, first batch joined after %.2f s",
            incarnation.number,
            incarnation.ready_after or -1,
            incarnation.progress_after or -1,
        )
    log.info(
        "labels: %d records, %d distinct label ids, %d (request, variant) pairs",
        len(outcome.labels),
        len({example.label_id for _, _, example in outcome.labels}),
        len(stream.expected),
    )
