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
