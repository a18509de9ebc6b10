"""Job store delivery operations on SQLite and PostgreSQL: leases, versions, the outbox."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.delivery.adapters.metrics import DeliveryMetrics
from services.delivery.service_layer.ingest import (
    ConsumedPrediction,
    RecordOrigin,
    RecordPredictions,
)
from shared.contracts import Callback, ClassifierOutput, DeadLetter, Prediction, PredictionError
from shared.contracts.base import utc_now
from shared.db import alembic_config, make_engine
from shared.jobstore.deliveries import AttemptRecord
from shared.jobstore.store import MIGRATIONS, VERSION_TABLE, JobStore, migrate
from shared.jobstore.tables import jobstore_metadata
from tests.support.postgres_server import PostgresServer

LEASE = timedelta(seconds=30)
pytestmark = [pytest.mark.postgres]


@pytest.fixture
def store(database_url: str) -> Iterator[JobStore]:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        yield JobStore(engine)
    finally:
        engine.dispose()


def answer(request_id: str, *, callback: bool = True, variant: str = "production") -> Prediction:
    return Prediction(
        request_id=request_id,
        model="iris",
        version=1,
        variant=variant,
        status="ok",
        output=ClassifierOutput(label="setosa", probabilities={"setosa": 1.0}),
        latency_ms=1.0,
        callback={"url": f"https://hooks.example.com/{request_id}"} if callback else None,
    )


def attempt(number: int, status: int | None, error: str | None = None) -> AttemptRecord:
    return AttemptRecord(
        attempt=number, status_code=status, error=error, duration_ms=12.5, attempted_at=utc_now()
    )


def test_migrations_match_the_tables(database_url: str) -> None:
    migrate(database_url)
    migrate(database_url)  # a second run is a no-op
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            differences = compare_metadata(context, jobstore_metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_migrations_downgrade_and_upgrade_again(database_url: str) -> None:
    config = alembic_config(database_url, MIGRATIONS, VERSION_TABLE)
    command.upgrade(config, "head")
    command.downgrade(config, "0001")
    command.upgrade(config, "head")
    engine = make_engine(database_url)
    try:
        store = JobStore(engine)
        assert store.record_predictions([answer("after-roundtrip")]) == ["after-roundtrip"]
    finally:
        engine.dispose()


def test_recording_marks_only_served_answers_with_a_callback_as_due(store: JobStore) -> None:
    failed = Prediction(
        request_id="failed",
        model="iris",
        version=1,
        variant="production",
        status="error",
        error=PredictionError(code="invalid_input", message="petal_width: missing"),
        latency_ms=1.0,
        callback={"url": "https://hooks.example.com/failed"},
    )
    due = store.record_predictions(
        [answer("a"), answer("b", callback=False), answer("c", variant="shadow"), failed],
        traceparents={"a": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
    )
    assert sorted(due) == ["a", "failed"]
    assert store.get("c") is None
    b = store.get("b")
    assert b is not None and b.delivery.status == "none"
    assert store.delivery_backlog() == 2
    # A redelivered answer changes nothing.
    assert store.record_predictions([answer("a")]) == []


def test_a_claim_hides_the_job_for_the_lease_then_it_is_due_again(store: JobStore) -> None:
    recorded = answer("job")
    store.record_predictions([recorded])
    now = utc_now()
    [claimed] = store.claim_due_deliveries(now=now, lease=LEASE, limit=10)
    assert claimed.request_id == "job" and claimed.attempts_made == 0
    assert claimed.callback_url == "https://hooks.example.com/job"
    assert Prediction.model_validate_json(claimed.body) == recorded
    assert store.claim_due_deliveries(now=now + timedelta(seconds=1), lease=LEASE, limit=10) == []
    # The claiming replica died: after the lease another one takes the job over.
    later = now + LEASE + timedelta(seconds=1)
    [again] = store.claim_due_deliveries(now=later, lease=LEASE, limit=10)
    assert again.request_id == "job" and again.attempts_made == 0


def test_an_attempt_is_recorded_only_by_the_holder_of_the_current_version(
    store: JobStore,
) -> None:
    store.record_predictions([answer("job")])
    now = utc_now()
    [first] = store.claim_due_deliveries(now=now, lease=LEASE, limit=1)
    retry_at = now + timedelta(seconds=5)
    assert store.record_delivery(
        "job",
        attempts_made=first.attempts_made,
        attempt=attempt(1, 503, "HTTP 503"),
        state="retrying",
        next_attempt_at=retry_at,
        error="HTTP 503",
    )
    # A replica that still believes it holds attempt 1 cannot record it again.
    assert not store.record_delivery(
        "job",
        attempts_made=first.attempts_made,
        attempt=attempt(1, 204),
        state="delivered",
        next_attempt_at=None,
        error=None,
    )
    assert store.claim_due_deliveries(now=now, lease=LEASE, limit=1) == []
    [second] = store.claim_due_deliveries(now=retry_at, lease=LEASE, limit=1)
    assert second.attempts_made == 1
    assert store.record_delivery(
        "job",
        attempts_made=1,
        attempt=attempt(2, 204),
        state="delivered",
        next_attempt_at=None,
        error=None,
    )
    job = store.get("job")
    assert job is not None
    assert job.delivery.status == "delivered" and job.delivery.next_attempt_at is None
    assert [(a.attempt, a.status_code, a.error) for a in job.delivery.attempts] == [
        (1, 503, "HTTP 503"),
        (2, 204, None),
    ]
    assert store.delivery_backlog() == 0
    assert store.claim_due_deliveries(now=retry_at + LEASE * 2, lease=LEASE, limit=1) == []


def test_concurrent_claims_never_share_a_job(store: JobStore) -> None:
    store.record_predictions([answer(f"job-{n:02d}") for n in range(40)])
    now = utc_now()
    claimed: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def claimer(index: int) -> None:
        start.wait()
        while batch := store.claim_due_deliveries(now=now, lease=LEASE, limit=3):
            claimed[index].extend(job.request_id for job in batch)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [request_id for share in claimed for request_id in share]
    assert sorted(everything) == [f"job-{n:02d}" for n in range(40)]
    assert len(set(everything)) == 40


def test_dead_deliveries_are_an_outbox_of_dead_letter_records(store: JobStore) -> None:
    store.record_predictions([answer("doomed"), answer("refused")])
    now = utc_now()
    claims = {d.request_id: d for d in store.claim_due_deliveries(now=now, lease=LEASE, limit=5)}
    assert store.record_delivery(
        "doomed",
        attempts_made=claims["doomed"].attempts_made,
        attempt=attempt(1, 500, "HTTP 500"),
        state="dead",
        next_attempt_at=now,
        error="gave up after 1 attempts; last error: HTTP 500",
        dead_reason="exhausted",
    )
    assert store.record_delivery(
        "refused",
        attempts_made=0,
        attempt=None,
        state="dead",
        next_attempt_at=now,
        error="callback refused: 10.0.0.1 is a private address",
        dead_reason="refused",
    )
    pending = {p.request_id: p for p in store.claim_dead_letters(now=now, lease=LEASE, limit=10)}
    assert pending["doomed"].dead_reason == "exhausted"
    assert pending["doomed"].attempts_made == 1
    assert pending["refused"].dead_reason == "refused"
    assert pending["refused"].last_error == "callback refused: 10.0.0.1 is a private address"
    assert Prediction.model_validate_json(pending["refused"].body).request_id == "refused"
    # Claimed for publishing: not handed out twice while the lease holds.
    assert store.claim_dead_letters(now=now, lease=LEASE, limit=10) == []
    store.mark_dead_lettered("doomed")
    later = now + LEASE + timedelta(seconds=1)
    assert [p.request_id for p in store.claim_dead_letters(now=later, lease=LEASE, limit=10)] == [
        "refused"
    ]
    refused = store.get("refused")
    assert refused is not None and refused.delivery.attempts == []
    assert refused.delivery.status == "dead"


class CollectedDeadLetters:
    """The dead-letter seam of the ingest use case, keeping what it is given."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def publish(self, letter: DeadLetter, *, key: str | None) -> None:
        self.letters.append(letter)


async def test_a_prediction_postgresql_rejects_is_dead_lettered_alone(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database(f"jobs_{uuid.uuid4().hex[:12]}")
    migrate(url)
    engine = make_engine(url)
    try:
        store, sink, woken = JobStore(engine), CollectedDeadLetters(), []
        handler = RecordPredictions(store, sink, DeliveryMetrics(), on_due=lambda: woken.append(1))
        too_long = answer("too-long").model_copy(
            update={"callback": Callback(url="https://hooks.example.com/" + "a" * 2040)}
        )

        def consumed(item: Prediction, offset: int) -> ConsumedPrediction:
            origin = RecordOrigin("predictions", 0, offset, item.request_id.encode(), b"{}")
            return ConsumedPrediction(prediction=item, traceparent=None, origin=origin)

        await handler.handle([consumed(answer("fine"), 1), consumed(too_long, 2)], [])
        fine = store.get("fine")
    finally:
        engine.dispose()
    assert fine is not None and fine.delivery.status == "pending"
    assert woken == [1]
    [letter] = sink.letters
    assert (letter.error_code, letter.key, letter.offset) == ("unrecordable", "too-long", 2)
    assert "too long" in letter.error_message
