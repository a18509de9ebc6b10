"""The job store's operations shared by the gateway (pending jobs) and delivery (results)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shared import db
from shared.contracts import Prediction, PredictionRequest
from shared.contracts.base import utc_now
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

    def record_predictions(self, predictions: Sequence[Prediction]) -> list[str]:
        """Store served results (shadow ones are never a job's answer).

        The first answer for a request wins, so a redelivered prediction changes nothing.
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
                if job.callback_url is not None:
                    job.delivery_status = "pending"
                    job.next_attempt_at = now
                    due.append(request_id)
                job.updated_at = now
                session.add(job)
            session.commit()
        return due
