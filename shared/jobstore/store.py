"""The job store's operations shared by the gateway (pending jobs) and delivery (results)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shared import db
from shared.contracts import Prediction, PredictionRequest
from shared.contracts.base import utc_now
from shared.jobstore.deliveries import (
    DUE_STATUSES,
    AttemptRecord,
    DeadReason,
    DeliveryState,
    DueDelivery,
    PendingDeadLetter,
)
from shared.jobstore.tables import DeliveryAttempt, Job
from shared.jobstore.views import JobView

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "jobstore_alembic_version"


def migrate(url: str) -> None:
    """Bring the job store's schema to the newest migration."""
    db.migrate(url, MIGRATIONS, VERSION_TABLE)


class JobStore:
    """Jobs keyed by request id: the idempotency key end to end."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_pending(self, request: PredictionRequest) -> tuple[JobView, bool]:
        """Record a submitted job; returns (job, created). A retried submit finds the first."""
        with Session(self.engine) as session:
            job = Job(
                request_id=request.request_id,
                model=request.model,
                callback_url=str(request.callback.url) if request.callback else None,
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
        now = utc_now()
        due: list[str] = []
        answers = {p.request_id: p for p in predictions if p.variant != "shadow"}
        if not answers:
            return due
        with Session(self.engine) as session:
            existing = {
                job.request_id: job
                for job in session.exec(select(Job).where(col(Job.request_id).in_(answers)))
            }
            for request_id, prediction in answers.items():
                job = existing.get(request_id)
                if job is None:
                    job = Job(request_id=request_id, model=prediction.model)
                elif job.status != "pending":
                    continue
                job.status = "done" if prediction.status == "ok" else "failed"
                job.prediction = prediction.model_dump(mode="json")
                if prediction.callback is not None:
                    job.callback_url = str(prediction.callback.url)
                if traceparents and request_id in traceparents:
                    job.traceparent = traceparents[request_id]
                if job.callback_url is not None:
                    job.delivery_status = "pending"
                    job.next_attempt_at = now
                    due.append(request_id)
                job.updated_at = now
                session.add(job)
            session.commit()
        return due

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
                request_id=job.request_id,
                callback_url=job.callback_url or "",
                body=prediction_body(job.prediction),
                attempts_made=job.delivery_attempts,
                traceparent=job.traceparent,
            )
            for job in self._claim(DUE_STATUSES, now=now, lease=lease, limit=limit)
        ]

    def claim_dead_letters(
        self, *, now: datetime, lease: timedelta, limit: int
    ) -> list[PendingDeadLetter]:
        """Claim dead jobs whose dead-letter record still has to be published (an outbox)."""
        return [
            PendingDeadLetter(
                request_id=job.request_id,
                callback_url=job.callback_url,
                body=prediction_body(job.prediction),
                attempts_made=job.delivery_attempts,
                last_error=job.last_error,
                dead_reason=_dead_reason(job.dead_reason),
            )
            for job in self._claim(("dead",), now=now, lease=lease, limit=limit)
        ]

    def _claim(
        self, statuses: Sequence[str], *, now: datetime, lease: timedelta, limit: int
    ) -> list[Job]:
        """Select due rows and push their time past the lease in one transaction.

        On PostgreSQL the candidates are locked with `FOR UPDATE SKIP LOCKED`, so replicas
        claiming at once take disjoint rows without waiting for each other. The UPDATE
        repeats the due condition, so a row another claimer took in between is not returned
        (on SQLite, which serialises writers, that condition alone keeps claims disjoint).
        """
        if limit <= 0:
            return []
        is_due = (
            col(Job.delivery_status).in_(statuses),
            col(Job.next_attempt_at).is_not(None),
            col(Job.next_attempt_at) <= now,
        )
        with Session(self.engine) as session:
            candidates = (
                select(Job.request_id)
                .where(*is_due)
                .order_by(col(Job.next_attempt_at))
                .limit(limit)
            )
            if self.engine.dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            request_ids = list(session.exec(candidates).all())
            if not request_ids:
                return []
            claimed_ids = set(
                session.exec(
                    update(Job)
                    .where(col(Job.request_id).in_(request_ids), *is_due)
                    .values(next_attempt_at=now + lease)
                    .returning(col(Job.request_id))
                ).scalars()
            )
            session.commit()
            if not claimed_ids:
                return []
            jobs = session.exec(
                select(Job)
                .where(col(Job.request_id).in_(claimed_ids))
                .order_by(col(Job.request_id))
            ).all()
            for job in jobs:
                session.expunge(job)
            return list(jobs)

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
        with Session(self.engine) as session:
            applied = session.exec(
                update(Job)
                .where(
                    col(Job.request_id) == request_id,
                    col(Job.delivery_attempts) == attempts_made,
                    col(Job.delivery_status).in_(DUE_STATUSES),
                )
                .values(
                    delivery_status=state,
                    delivery_attempts=attempts_made + (1 if attempt else 0),
                    next_attempt_at=next_attempt_at,
                    last_error=error[:2000] if error else None,
                    dead_reason=dead_reason if state == "dead" else None,
                    updated_at=utc_now(),
                )
            ).rowcount
            if applied != 1:
                session.rollback()
                return False
            if attempt is not None:
                session.add(
                    DeliveryAttempt(
                        request_id=request_id,
                        attempt=attempt.attempt,
                        status_code=attempt.status_code,
                        error=attempt.error[:2000] if attempt.error else None,
                        duration_ms=attempt.duration_ms,
                        attempted_at=attempt.attempted_at,
                    )
                )
            session.commit()
            return True

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
