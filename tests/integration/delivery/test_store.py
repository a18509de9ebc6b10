"""Job store delivery operations on SQLite and PostgreSQL: leases, versions, the outbox."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from devtools.postgres_server import PostgresServer
from services.delivery.adapters.metrics import DeliveryMetrics
from services.delivery.service_layer.ingest import (
    ConsumedPrediction,
    RecordOrigin,
    RecordPredictions,
)
from shared.callback_seal import seal_callback
from shared.contracts import (
    Callback,
    ClassifierOutput,
    DeadLetter,
    Prediction,
    PredictionError,
    PredictionRequest,
)
from shared.contracts.base import utc_now
from shared.db import alembic_config, make_engine
from shared.jobstore.deliveries import AttemptRecord, DeliveryOutcome, DueDelivery
from shared.jobstore.store import MAX_ERROR_CHARS, MIGRATIONS, VERSION_TABLE, JobStore, migrate
from shared.jobstore.tables import jobstore_metadata

LEASE = timedelta(seconds=30)
TRACEPARENT = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
pytestmark = [pytest.mark.postgres]


SEAL_KEY = b"callback-seal-key-for-tests-0123456789"


@pytest.fixture
def store(jobstore_engine: Engine) -> JobStore:
    return JobStore(jobstore_engine)


def sealed(prediction: Prediction) -> Prediction:
    """The prediction with its callback sealed, as a worker sends it."""
    if prediction.callback is None:
        return prediction
    seal = seal_callback(SEAL_KEY, prediction.request_id, str(prediction.callback.url))
    return prediction.model_copy(update={"callback_seal": seal})


def answer(request_id: str, *, callback: bool = True, variant: str = "production") -> Prediction:
    return sealed(
        Prediction(
            request_id=request_id,
            model="iris",
            version=1,
            variant=variant,
            status="ok",
            output=ClassifierOutput(label="setosa", probabilities={"setosa": 1.0}),
            latency_ms=1.0,
            callback={"url": f"https://hooks.example.com/{request_id}"} if callback else None,
        )
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
        handler = RecordPredictions(
            store,
            sink,
            DeliveryMetrics(),
            on_due=lambda: woken.append(1),
            callback_seal_key=SEAL_KEY,
        )
        too_long = sealed(
            answer("too-long").model_copy(
                update={"callback": Callback(url="https://hooks.example.com/" + "a" * 2040)}
            )
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


def test_recording_can_claim_the_due_webhooks_at_once(store: JobStore) -> None:
    sent = [answer("first"), answer("second"), answer("third")]
    recorded = store.record_answers(sent, claim_lease=LEASE, claim_limit=2)
    assert recorded.due == ["first", "second", "third"]
    assert [job.request_id for job in recorded.claimed] == ["first", "second"]
    first = recorded.claimed[0]
    assert first.attempts_made == 0 and first.callback_url == "https://hooks.example.com/first"
    assert Prediction.model_validate_json(first.body) == sent[0]
    # Claimed ones are leased; the third is due for anyone to claim.
    now = utc_now()
    assert [d.request_id for d in store.claim_due_deliveries(now=now, lease=LEASE, limit=10)] == [
        "third"
    ]
    # A replica that claimed at ingest and died leaves its jobs due after the lease.
    later = now + LEASE + timedelta(seconds=1)
    again = store.claim_due_deliveries(now=later, lease=LEASE, limit=10)
    assert sorted(d.request_id for d in again) == ["first", "second", "third"]
    assert store.record_answers([answer("first")], claim_lease=LEASE, claim_limit=5).claimed == []


def test_a_pending_job_gets_its_answer_and_keeps_the_gateways_callback(store: JobStore) -> None:
    request = PredictionRequest(
        request_id="via-gateway",
        model="iris",
        inputs={"sepal_length": 5.1},
        callback={"url": "https://hooks.example.com/from-gateway"},
    )
    store.create_pending(request)
    served = answer("via-gateway", callback=False)
    recorded = store.record_answers(
        [served], traceparents={"via-gateway": TRACEPARENT}, claim_lease=LEASE, claim_limit=1
    )
    [claimed] = recorded.claimed
    assert claimed.callback_url == "https://hooks.example.com/from-gateway"
    assert claimed.traceparent == TRACEPARENT
    job = store.get("via-gateway")
    assert job is not None and job.status == "done" and job.delivery.status == "pending"
    assert job.prediction == json.loads(served.model_dump_json())
    assert store.record_answers([served], claim_lease=LEASE, claim_limit=1).due == []


def test_many_outcomes_are_recorded_at_once_each_against_its_own_version(store: JobStore) -> None:
    store.record_predictions([answer(name) for name in ("ok", "flaky", "stale", "refused")])
    now = utc_now()
    claims = {d.request_id: d for d in store.claim_due_deliveries(now=now, lease=LEASE, limit=9)}
    retry_at = now + timedelta(seconds=3)

    def outcome(request_id: str, **changes: Any) -> DeliveryOutcome:
        values: dict[str, Any] = {
            "request_id": request_id,
            "attempts_made": claims[request_id].attempts_made,
            "attempt": attempt(1, 204),
            "state": "delivered",
            "next_attempt_at": None,
            "error": None,
        }
        return DeliveryOutcome(**(values | changes))

    applied = store.record_deliveries(
        [
            outcome("ok"),
            outcome(
                "flaky",
                attempt=attempt(1, 503, "HTTP 503"),
                state="retrying",
                next_attempt_at=retry_at,
                error="HTTP 503",
            ),
            outcome("stale", attempts_made=3),  # claimed at another version: not ours
            outcome(
                "refused",
                attempt=None,
                state="dead",
                next_attempt_at=now,
                error="callback refused: private",
                dead_reason="refused",
            ),
            outcome("ok", attempt=attempt(1, 204)),  # the same claim recorded twice
        ]
    )

    assert applied == [True, True, False, True, False]
    views = {name: store.get(name) for name in claims}
    assert all(view is not None for view in views.values())
    ok, flaky, stale, refused = (views[n] for n in ("ok", "flaky", "stale", "refused"))
    assert ok is not None and flaky is not None and stale is not None and refused is not None
    assert ok.delivery.status == "delivered" and len(ok.delivery.attempts) == 1
    assert flaky.delivery.status == "retrying" and flaky.delivery.last_error == "HTTP 503"
    assert [(a.attempt, a.status_code) for a in flaky.delivery.attempts] == [(1, 503)]
    assert stale.delivery.status == "pending" and stale.delivery.attempts == []
    assert refused.delivery.status == "dead" and refused.delivery.attempts == []
    [retry] = store.claim_due_deliveries(now=retry_at, lease=LEASE, limit=9)
    assert (retry.request_id, retry.attempts_made) == ("flaky", 1)
    [letter] = store.claim_dead_letters(now=now, lease=LEASE, limit=9)
    assert (letter.request_id, letter.dead_reason) == ("refused", "refused")


def test_a_receivers_nul_bytes_and_bad_text_never_fail_the_batch_they_are_recorded_in(
    store: JobStore,
) -> None:
    """PostgreSQL refuses NUL in text: unclean, one excerpt would roll back every outcome."""
    names = ("before", "hostile", "after")
    store.record_predictions([answer(name) for name in names])
    now = utc_now()
    claims = {d.request_id: d for d in store.claim_due_deliveries(now=now, lease=LEASE, limit=9)}
    hostile_error = "HTTP 500: \x00\x00boom\x00 \udcff" + "x" * 5000
    retry_at = now + timedelta(seconds=3)

    def outcome(request_id: str, error: str | None) -> DeliveryOutcome:
        return DeliveryOutcome(
            request_id=request_id,
            attempts_made=claims[request_id].attempts_made,
            attempt=attempt(1, 500 if error else 204, error),
            state="retrying" if error else "delivered",
            next_attempt_at=retry_at if error else None,
            error=error,
        )

    applied = store.record_deliveries(
        [outcome("before", None), outcome("hostile", hostile_error), outcome("after", None)]
    )

    assert applied == [True, True, True]
    before, hostile, after = (store.get(name) for name in names)
    assert before is not None and before.delivery.status == "delivered"
    assert after is not None and after.delivery.status == "delivered"
    assert hostile is not None and hostile.delivery.status == "retrying"
    stored = hostile.delivery.last_error
    assert stored is not None and stored.startswith("HTTP 500: boom \ufffdxxx")
    assert "\x00" not in stored and len(stored) <= MAX_ERROR_CHARS
    [hostile_attempt] = hostile.delivery.attempts
    assert hostile_attempt.error == stored


class RoomFor:
    """The claimed-webhooks seam of the ingest use case, with a fixed amount of room."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.taken: list[str] = []
        self.reservations = 0
        self.granted = 0

    def reserve(self, wanted: int) -> int:
        self.reservations += 1
        self.granted = min(wanted, self.room)
        return self.granted

    def take(self, jobs: Sequence[DueDelivery], *, reserved: int) -> None:
        assert reserved == self.granted and len(jobs) <= reserved
        self.reservations -= 1
        self.taken.extend(job.request_id for job in jobs)


async def test_ingest_hands_over_what_it_has_room_for_and_announces_the_rest(
    store: JobStore,
) -> None:
    woken: list[int] = []
    room = RoomFor(2)
    handler = RecordPredictions(
        store,
        CollectedDeadLetters(),
        DeliveryMetrics(),
        on_due=lambda: woken.append(1),
        claimed=room,
        lease=LEASE,
        callback_seal_key=SEAL_KEY,
    )

    def consumed(item: Prediction, offset: int) -> ConsumedPrediction:
        origin = RecordOrigin("predictions", 0, offset, item.request_id.encode(), b"{}")
        return ConsumedPrediction(prediction=item, traceparent=None, origin=origin)

    await handler.handle([consumed(answer(f"job-{n}"), n) for n in range(3)], [])
    assert room.taken == ["job-0", "job-1"] and room.reservations == 0
    assert woken == [1]
    due = store.claim_due_deliveries(now=utc_now(), lease=LEASE, limit=10)
    assert [d.request_id for d in due] == ["job-2"]

    # Everything handed over: nobody needs waking.
    await handler.handle([consumed(answer("job-3"), 3)], [])
    assert room.taken[-1] == "job-3" and woken == [1]
