"""The job store's operations shared by the gateway (pending jobs) and delivery (results).

Delivery's hot path (recording answers, claiming webhooks, recording attempts) is SQLAlchemy
Core with a few statements per batch, not ORM objects per job: at a thousand webhooks a
second, per-job round trips were most of the delivery service's time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Row, bindparam, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shared import db
from shared.contracts import Prediction, PredictionRequest
from shared.contracts.base import utc_now
from shared.jobstore.deliveries import (
    DUE_STATUSES,
    AttemptRecord,
    DeadReason,
    DeliveryOutcome,
    DeliveryState,
    DueDelivery,
    PendingDeadLetter,
    RecordedAnswers,
)
from shared.jobstore.tables import DeliveryAttempt, Job, jobstore_metadata
from shared.jobstore.views import JobView
from shared.storable_text import storable_text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "jobstore_alembic_version"
JOBS = jobstore_metadata.tables["jobs"]
ATTEMPTS = jobstore_metadata.tables["delivery_attempts"]
ROWS_PER_STATEMENT = 500
"""Most request ids in one IN list or one multi-row statement."""
MAX_ERROR_CHARS = 2000
T = TypeVar("T")
AnyRow = Row[*tuple[Any, ...]]


def migrate(url: str) -> None:
    """Bring the job store's schema to the newest migration."""
    db.migrate(url, MIGRATIONS, VERSION_TABLE)


class JobsChangedMeanwhile(RuntimeError):
    """Jobs changed between reading and writing them; recording the batch again is safe."""


class JobStore:
    """Jobs keyed by request id: the idempotency key end to end."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        locking = engine.dialect.name == "postgresql"
        self._known_jobs = _known_jobs_statement(lock=locking)
        self._claim_statement = _claim_statement(skip_locked=locking)

    def create_pending(
        self, request: PredictionRequest, owner: str | None = None
    ) -> tuple[JobView, bool]:
        """Record a submitted job; returns (job, created). A retried submit finds the first."""
        with Session(self.engine) as session:
            job = Job(
                request_id=request.request_id,
                model=request.model,
                callback_url=request.callback_url,
                owner=owner,
            )
            session.add(job)
            try:
                session.commit()
                created = True
            except IntegrityError:
                session.rollback()
                created = False
        view = self.get(request.request_id)
        assert view is not None
        return view, created

    def get(self, request_id: str) -> JobView | None:
        with Session(self.engine) as session:
            job = session.get(Job, request_id)
            if job is None:
                return None
            attempts = session.exec(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.request_id == request_id)
                .order_by(col(DeliveryAttempt.attempt))
            ).all()
            return JobView.of(job, list(attempts))

    def record_predictions(
        self,
        predictions: Sequence[Prediction],
        *,
        traceparents: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Store served results (shadow ones are never a job's answer).

        The first answer for a request wins, so a redelivered prediction changes nothing.
        `traceparents` maps request ids to the trace the webhook should continue.
        Returns the request ids whose webhook is now due.
        """
        return self.record_answers(predictions, traceparents=traceparents).due

    def record_answers(
        self,
        predictions: Sequence[Prediction],
        *,
        traceparents: Mapping[str, str] | None = None,
        claim_lease: timedelta | None = None,
        claim_limit: int = 0,
    ) -> RecordedAnswers:
        """`record_predictions`, and claim up to `claim_limit` of the due webhooks at once.

        The claimed ones are stored already leased (due again only after `claim_lease`), so
        the caller can send them straight from memory, and a crash before it does only
        delays them by the lease. One transaction with one statement per kind of change.
        """
        now = utc_now()
        answers = {p.request_id: p for p in predictions if p.variant != "shadow"}
        if not answers:
            return RecordedAnswers(due=[], claimed=[])
        claim_until = now + claim_lease if claim_lease is not None else None
        due: list[str] = []
        claimed: list[DueDelivery] = []
        new_rows: list[dict[str, Any]] = []
        changed_rows: list[dict[str, Any]] = []
        with self.engine.begin() as connection:
            known = self._jobs_to_answer(connection, list(answers))
            for request_id, prediction in answers.items():
                job = known.get(request_id)
                if job is not None and job.status != "pending":
                    continue  # answered already: the first answer wins
                # A gateway job keeps the callback the gateway accepted, whatever a record
                # on `predictions` says; other jobs take the prediction's (the caller
                # passes only callbacks it trusts, see delivery's ingest).
                callback_url = (
                    job.callback_url
                    if job is not None
                    else (str(prediction.callback.url) if prediction.callback is not None else None)
                )
                traceparent = (traceparents or {}).get(request_id) or (
                    job.traceparent if job is not None else None
                )
                row: dict[str, Any] = {
                    "request_id": request_id,
                    "status": "done" if prediction.status == "ok" else "failed",
                    "prediction": prediction.model_dump(mode="json"),
                    "callback_url": callback_url,
                    "traceparent": traceparent,
                    "delivery_status": job.delivery_status if job is not None else "none",
                    "next_attempt_at": job.next_attempt_at if job is not None else None,
                    "updated_at": now,
                }
                if callback_url is not None:
                    row["delivery_status"] = "pending"
                    row["next_attempt_at"] = now
                    due.append(request_id)
                    if claim_until is not None and len(claimed) < claim_limit:
                        row["next_attempt_at"] = claim_until
                        claimed.append(
                            DueDelivery(
                                request_id=request_id,
                                callback_url=callback_url,
                                body=prediction.model_dump_json().encode(),
                                attempts_made=job.delivery_attempts if job is not None else 0,
                                traceparent=traceparent,
                                owner=job.owner if job is not None else None,
                            )
                        )
                if job is None:
                    new_rows.append(
                        row
                        | {
                            "model": prediction.model,
                            "delivery_attempts": 0,
                            "last_error": None,
                            "dead_reason": None,
                            "created_at": now,
                        }
                    )
                else:
                    changed_rows.append({f"b_{name}": value for name, value in row.items()})
            if new_rows:
                connection.execute(_INSERT_JOBS, new_rows)
            if changed_rows:
                answered = connection.execute(_ANSWER_PENDING_JOB, changed_rows).rowcount
                counted = connection.dialect.supports_sane_multi_rowcount
                if counted and answered != len(changed_rows):
                    # A pending job was answered or discarded since we read it (on SQLite,
                    # where the read takes no lock): roll back, and the batch is retried.
                    raise JobsChangedMeanwhile(
                        f"{len(changed_rows) - answered} pending jobs changed while recording"
                    )
        return RecordedAnswers(due=due, claimed=claimed)

    def _jobs_to_answer(self, connection: Connection, request_ids: list[str]) -> dict[str, AnyRow]:
        """The jobs among `request_ids` that exist already (the gateway's pending ones).

        On PostgreSQL they are locked for the transaction, so two replicas recording the
        same answer (during a rebalance) cannot both find the job pending.
        """
        found: dict[str, AnyRow] = {}
        for chunk in _chunks(request_ids):
            for row in connection.execute(self._known_jobs, {"request_ids": list(chunk)}):
                found[str(row.request_id)] = row
        return found

    # Delivery: claims with a lease, attempts recorded with a version check.

    def claim_due_deliveries(
        self, *, now: datetime, lease: timedelta, limit: int
    ) -> list[DueDelivery]:
        """Claim up to `limit` webhooks that are due, oldest first, for `lease`.

        The claim moves `next_attempt_at` to the end of the lease, so no other replica
        picks the job meanwhile, and a replica that dies mid-send leaves it due again.
        """
        return [
            DueDelivery(
                request_id=row.request_id,
                callback_url=row.callback_url or "",
                body=prediction_body(row.prediction),
                attempts_made=row.delivery_attempts,
                traceparent=row.traceparent,
                owner=row.owner,
            )
            for row in self._claim(DUE_STATUSES, now=now, lease=lease, limit=limit)
        ]

    def claim_dead_letters(
        self, *, now: datetime, lease: timedelta, limit: int
    ) -> list[PendingDeadLetter]:
        """Claim dead jobs whose dead-letter record still has to be published (an outbox)."""
        return [
            PendingDeadLetter(
                request_id=row.request_id,
                callback_url=row.callback_url,
                body=prediction_body(row.prediction),
                attempts_made=row.delivery_attempts,
                last_error=row.last_error,
                dead_reason=_dead_reason(row.dead_reason),
            )
            for row in self._claim(("dead",), now=now, lease=lease, limit=limit)
        ]

    def _claim(
        self, statuses: Sequence[str], *, now: datetime, lease: timedelta, limit: int
    ) -> list[AnyRow]:
        """Push the oldest due rows' time past the lease and return them: one statement.

        `UPDATE ... WHERE request_id IN (SELECT ... LIMIT n) RETURNING ...`. On PostgreSQL
        the subquery locks its rows with `FOR UPDATE SKIP LOCKED`, so replicas claiming at
        once take disjoint rows without waiting for each other, and the UPDATE repeats the
        due condition, so a row another claimer took in between is not returned. SQLite
        runs the statement under its single writer lock.
        """
        if limit <= 0:
            return []
        with self.engine.begin() as connection:
            rows = list(
                connection.execute(
                    self._claim_statement,
                    {
                        "statuses": list(statuses),
                        "now": now,
                        "lease_end": now + lease,
                        "limit": limit,
                    },
                )
            )
        return sorted(rows, key=lambda row: str(row.request_id))

    def record_delivery(
        self,
        request_id: str,
        *,
        attempts_made: int,
        attempt: AttemptRecord | None,
        state: DeliveryState,
        next_attempt_at: datetime | None,
        error: str | None,
        dead_reason: DeadReason | None = None,
    ) -> bool:
        """Record what became of a claimed delivery, with its attempt if one was made.

        Applies only if the job still has the `attempts_made` it was claimed with and is
        still due for delivery, so a replica whose lease ran out cannot overwrite the work
        of the one that took over. Returns whether the record was applied.
        """
        [applied] = self.record_deliveries(
            [
                DeliveryOutcome(
                    request_id=request_id,
                    attempts_made=attempts_made,
                    attempt=attempt,
                    state=state,
                    next_attempt_at=next_attempt_at,
                    error=error,
                    dead_reason=dead_reason,
                )
            ]
        )
        return applied

    def record_deliveries(self, outcomes: Sequence[DeliveryOutcome]) -> list[bool]:
        """`record_delivery` for many outcomes in one transaction; which ones applied.

        Outcomes that change their jobs alike (typically: delivered at the first attempt)
        share one `UPDATE ... WHERE request_id IN (...) AND delivery_attempts = n RETURNING`,
        so the version check stays per job while the batch costs a few statements; the
        attempts of the applied ones go in with one multi-row INSERT. Outcomes for the same
        job are applied in their order, each against the state the previous one left.
        """
        now = utc_now()
        applied = [False] * len(outcomes)
        with self.engine.begin() as connection:
            for round_ in _rounds_of_distinct_jobs(outcomes):
                groups: dict[tuple[Any, ...], list[int]] = {}
                for index in round_:
                    outcome = outcomes[index]
                    groups.setdefault(_change_of(outcome), []).append(index)
                for change, indexes in groups.items():
                    attempts_made, attempted, state, next_at, error, dead_reason = change
                    for chunk in _chunks(indexes):
                        parameters = {
                            "request_ids": [outcomes[index].request_id for index in chunk],
                            "claimed_version": attempts_made,
                            "b_delivery_status": state,
                            "b_delivery_attempts": attempts_made + (1 if attempted else 0),
                            "b_next_attempt_at": next_at,
                            "b_last_error": error,
                            "b_dead_reason": dead_reason,
                            "b_updated_at": now,
                        }
                        changed = set(connection.execute(_RECORD_OUTCOME, parameters).scalars())
                        for index in chunk:
                            applied[index] = outcomes[index].request_id in changed
            attempt_rows = [
                {
                    "request_id": outcome.request_id,
                    "attempt": outcome.attempt.attempt,
                    "status_code": outcome.attempt.status_code,
                    "error": _clip(outcome.attempt.error),
                    "duration_ms": outcome.attempt.duration_ms,
                    "attempted_at": outcome.attempt.attempted_at,
                }
                for outcome, recorded in zip(outcomes, applied, strict=True)
                if recorded and outcome.attempt is not None
            ]
            if attempt_rows:
                connection.execute(_INSERT_ATTEMPTS, attempt_rows)
        return applied

    def mark_dead_lettered(self, request_id: str) -> None:
        """The dead-letter record is published: nothing is left to do for this job."""
        with Session(self.engine) as session:
            session.exec(
                update(Job)
                .where(col(Job.request_id) == request_id, col(Job.delivery_status) == "dead")
                .values(next_attempt_at=None)
            )
            session.commit()

    def delivery_backlog(self) -> int:
        """Webhooks waiting to be sent (due now or later), for the backlog gauge."""
        with Session(self.engine) as session:
            count = session.exec(
                select(func.count())
                .select_from(Job)
                .where(
                    col(Job.next_attempt_at).is_not(None),
                    col(Job.delivery_status).in_(DUE_STATUSES),
                )
            ).one()
            return int(count)


# Statements built once: building and keying a Core statement costs more than running it.


def _param(name: str, column: sa.Column[Any]) -> sa.BindParameter[Any]:
    return bindparam(name, type_=column.type)


_INSERT_JOBS = insert(JOBS)
_INSERT_ATTEMPTS = insert(ATTEMPTS)

_ANSWER_PENDING_JOB = (
    update(JOBS)
    .where(JOBS.c.request_id == bindparam("b_request_id"), JOBS.c.status == "pending")
    .values(
        {
            column: _param(f"b_{column}", JOBS.c[column])
            for column in (
                "status",
                "prediction",
                "callback_url",
                "traceparent",
                "delivery_status",
                "next_attempt_at",
                "updated_at",
            )
        }
    )
)
"""Give a pending job (the gateway's) its answer; executed for many rows at once."""

_RECORD_OUTCOME = (
    update(JOBS)
    .where(
        JOBS.c.request_id.in_(bindparam("request_ids", expanding=True)),
        JOBS.c.delivery_attempts == bindparam("claimed_version"),
        JOBS.c.delivery_status.in_(DUE_STATUSES),
    )
    .values(
        {
            column: _param(f"b_{column}", JOBS.c[column])
            for column in (
                "delivery_status",
                "delivery_attempts",
                "next_attempt_at",
                "last_error",
                "dead_reason",
                "updated_at",
            )
        }
    )
    .returning(JOBS.c.request_id)
)
"""One outcome for many jobs, each only if still at the version it was claimed with."""


def _known_jobs_statement(*, lock: bool) -> sa.Select[Any]:
    query = (
        sa.select(
            JOBS.c.request_id,
            JOBS.c.status,
            JOBS.c.callback_url,
            JOBS.c.traceparent,
            JOBS.c.delivery_status,
            JOBS.c.next_attempt_at,
            JOBS.c.delivery_attempts,
            JOBS.c.owner,
        )
        .where(JOBS.c.request_id.in_(bindparam("request_ids", expanding=True)))
        .order_by(JOBS.c.request_id)
    )
    return query.with_for_update() if lock else query


def _claim_statement(*, skip_locked: bool) -> sa.Update:
    """`UPDATE jobs SET next_attempt_at = :lease_end WHERE <due> AND request_id IN
    (SELECT ... WHERE <due> ORDER BY next_attempt_at LIMIT :limit) RETURNING ...`."""
    is_due = (
        JOBS.c.delivery_status.in_(bindparam("statuses", expanding=True)),
        JOBS.c.next_attempt_at.is_not(None),
        JOBS.c.next_attempt_at <= _param("now", JOBS.c.next_attempt_at),
    )
    candidates = (
        sa.select(JOBS.c.request_id)
        .where(*is_due)
        .order_by(JOBS.c.next_attempt_at)
        .limit(bindparam("limit", type_=sa.Integer))
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        update(JOBS)
        .where(JOBS.c.request_id.in_(candidates), *is_due)
        .values(next_attempt_at=_param("lease_end", JOBS.c.next_attempt_at))
        .returning(
            JOBS.c.request_id,
            JOBS.c.callback_url,
            JOBS.c.prediction,
            JOBS.c.delivery_attempts,
            JOBS.c.traceparent,
            JOBS.c.last_error,
            JOBS.c.dead_reason,
            JOBS.c.owner,
        )
    )


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """Slices small enough for one IN list on every backend."""
    for start in range(0, len(items), ROWS_PER_STATEMENT):
        yield items[start : start + ROWS_PER_STATEMENT]


def _rounds_of_distinct_jobs(outcomes: Sequence[DeliveryOutcome]) -> Iterator[list[int]]:
    """Indexes of `outcomes` in rounds that name each job at most once, in order."""
    remaining = list(range(len(outcomes)))
    while remaining:
        seen: set[str] = set()
        this_round: list[int] = []
        later: list[int] = []
        for index in remaining:
            request_id = outcomes[index].request_id
            (later if request_id in seen else this_round).append(index)
            seen.add(request_id)
        yield this_round
        remaining = later


def _change_of(outcome: DeliveryOutcome) -> tuple[Any, ...]:
    """What recording `outcome` writes, besides the job it writes it to."""
    return (
        outcome.attempts_made,
        outcome.attempt is not None,
        outcome.state,
        outcome.next_attempt_at,
        _clip(outcome.error),
        outcome.dead_reason if outcome.state == "dead" else None,
    )


def _clip(text: str | None) -> str | None:
    """An error as the database can store it, whoever wrote it (a receiver had a say)."""
    if not text:
        return None
    return storable_text(text, max_chars=MAX_ERROR_CHARS) or None


def _dead_reason(stored: str | None) -> DeadReason:
    if stored == "gone":
        return "gone"
    if stored == "refused":
        return "refused"
    return "exhausted"


def prediction_body(stored: dict[str, Any] | None) -> bytes:
    """The webhook body: the stored prediction as its contract serialises it.

    Falls back to plain JSON for a stored result a newer contract no longer reads, so an
    answer already recorded is still delivered.
    """
    if stored is None:
        return b"null"
    try:
        return Prediction.model_validate(stored).model_dump_json().encode()
    except ValidationError:
        return json.dumps(stored, separators=(",", ":")).encode()
