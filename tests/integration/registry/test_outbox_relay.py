"""Two registry replicas' relays on one PostgreSQL database publish each event once, in order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import pytest
from sqlmodel import Session

from devtools.kafka_broker import KafkaBroker
from devtools.postgres_server import PostgresServer
from services.registry.adapters.database import make_engine, migrate
from services.registry.adapters.outbox_relay import OutboxRelay
from services.registry.adapters.tables import OutboxEvent
from shared.contracts import DeploymentState, ModelEvent
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import decode
from shared.kafka.publisher import Publisher
from shared.topics import MODEL_EVENTS
from tests.support.topic_reader import read_records

pytestmark = [pytest.mark.kafka]

MODELS = ("iris", "wine", "digits")
WAVES = 3
CHANGES_PER_WAVE = 80  # per model: 240 revisions each, 720 events in all


def _queue_wave(session: Session, wave: int) -> None:
    """Interleaved deployment changes of every model, as concurrent API calls would leave."""
    for step in range(CHANGES_PER_WAVE):
        revision = wave * CHANGES_PER_WAVE + step + 1
        for model in MODELS:
            event = ModelEvent(
                event_type="deployment.changed",
                model=model,
                deployment=DeploymentState(production=1 + revision % 2, revision=revision),
                actor="tests",
            )
            session.add(
                OutboxEvent(topic=MODEL_EVENTS.name, key=model, payload=event.model_dump_json())
            )
    session.commit()


async def test_two_relays_publish_each_models_revisions_once_and_in_order(
    postgres_server: PostgresServer, kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    url = postgres_server.create_database(f"relays_{uuid.uuid4().hex[:12]}")
    migrate(url)
    await ensure_topics(kafka_broker.bootstrap, prefix=topic_prefix, specs=[MODEL_EVENTS])
    writer, *replica_engines = (make_engine(url) for _ in range(3))
    relays = [
        OutboxRelay(
            engine,
            lambda: Publisher(kafka_broker.bootstrap, source="registry", topic_prefix=topic_prefix),
            poll_seconds=0.05,
        )
        for engine in replica_engines
    ]
    try:
        with Session(writer) as session:
            await asyncio.to_thread(_queue_wave, session, 0)
            for relay in relays:
                relay.start()
            for wave in range(1, WAVES):
                await asyncio.to_thread(_queue_wave, session, wave)
                for relay in relays:
                    relay.notify()
        deadline = time.monotonic() + 60
        while relays[0].pending_count() > 0:
            assert time.monotonic() < deadline, "the relays did not publish everything in 60 s"
            await asyncio.sleep(0.1)
    finally:
        for relay in relays:
            await relay.stop()
        for engine in (writer, *replica_engines):
            engine.dispose()

    total = len(MODELS) * WAVES * CHANGES_PER_WAVE
    records = await read_records(
        kafka_broker.bootstrap, topic_prefix + MODEL_EVENTS.name, expected=total + 1, timeout=5
    )
    revisions: dict[str, list[int]] = defaultdict(list)
    for record in records:
        event = decode(MODEL_EVENTS, record.value, record.headers)
        assert event.deployment is not None and event.deployment.revision is not None
        assert record.key == event.model.encode()
        revisions[event.model].append(event.deployment.revision)
    expected = list(range(1, WAVES * CHANGES_PER_WAVE + 1))
    assert {model: revisions[model] for model in MODELS} == dict.fromkeys(MODELS, expected)
    assert len(records) == total
    assert sum(relay.published for relay in relays) == total
