"""Public views of jobs, as `GET /v1/jobs/{request_id}` returns them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from shared.jobstore.tables import DeliveryAttempt, Job

JobStatus = Literal["pending", "done", "failed"]


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AttemptView(BaseModel):
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: float
    attempted_at: datetime


class DeliveryView(BaseModel):
    status: str
    callback_url: str | None
    attempts: list[AttemptView]
    next_attempt_at: datetime | None
    last_error: str | None


class JobView(BaseModel):
    """What became of a request: pending, done with its prediction, or failed with the error."""

    request_id: str
    model: str
    owner: str | None
    """The API key that submitted it through the gateway; None if published to Kafka."""
    status: JobStatus
    prediction: dict[str, Any] | None
    delivery: DeliveryView
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job, attempts: list[DeliveryAttempt]) -> JobView:
        return cls(
            request_id=job.request_id,
            owner=job.owner,
            model=job.model,
            status=job.status,
            prediction=job.prediction,
            delivery=DeliveryView(
                status=job.delivery_status,
                callback_url=job.callback_url,
                attempts=[
                    AttemptView(
                        attempt=a.attempt,
                        status_code=a.status_code,
                        error=a.error,
                        duration_ms=a.duration_ms,
                        attempted_at=as_utc(a.attempted_at),
                    )
                    for a in attempts
                ],
                next_attempt_at=as_utc(job.next_attempt_at) if job.next_attempt_at else None,
                last_error=job.last_error,
            ),
            created_at=as_utc(job.created_at),
            updated_at=as_utc(job.updated_at),
        )
