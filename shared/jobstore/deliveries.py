"""What the job store hands the delivery service, and what it takes back from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

DUE_STATUSES = ("pending", "retrying")
"""Delivery states in which a webhook still has to be sent."""

DeliveryState = Literal["retrying", "delivered", "dead"]
DeadReason = Literal["exhausted", "gone", "refused"]


@dataclass(frozen=True)
class DueDelivery:
    """A webhook claimed for sending: the body is the prediction JSON, byte for byte."""

    request_id: str
    callback_url: str
    body: bytes
    attempts_made: int
    traceparent: str | None
    owner: str | None = None
    """The API key that submitted the job: its webhook secrets sign the webhook. None for
    a job published straight to Kafka (the default secret signs it)."""


@dataclass(frozen=True)
class AttemptRecord:
    """One webhook attempt as it went over the network (or failed to)."""

    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: float
    attempted_at: datetime


@dataclass(frozen=True)
class PendingDeadLetter:
    """A job whose delivery is dead and whose dead-letter record is not yet published."""

    request_id: str
    callback_url: str | None
    body: bytes
    attempts_made: int
    last_error: str | None
    dead_reason: DeadReason


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of one claimed delivery, to be recorded with the version it was claimed at.

    `attempt` is None when nothing was sent (a refused callback). `next_attempt_at` is the
    retry time (retrying), now (dead: its dead-letter record is due) or None (delivered).
    """

    request_id: str
    attempts_made: int
    attempt: AttemptRecord | None
    state: DeliveryState
    next_attempt_at: datetime | None
    error: str | None
    dead_reason: DeadReason | None = None


@dataclass(frozen=True)
class RecordedAnswers:
    """A recorded batch of predictions: webhooks now due, and those claimed at once.

    `claimed` is a prefix of the due webhooks, already leased to the caller, so it can send
    them without a claim of its own; the others are due for any replica to claim.
    """

    due: list[str]
    claimed: list[DueDelivery]
