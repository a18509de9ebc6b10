"""What a webhook attempt's result means for the job: delivered, retry later, or give up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from services.delivery.domain.backoff import Backoff

GONE = 410


@dataclass(frozen=True)
class AttemptResult:
    """How one POST to the callback went, as far as the network told us."""

    status_code: int | None
    """The receiver's HTTP status, or None when no response arrived."""
    error: str | None
    """Why the attempt failed (status and body excerpt, timeout, connection error)."""
    duration_ms: float
    retry_after_seconds: float | None = None
    """The receiver's `Retry-After`, when it sent one in seconds."""


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    FINAL = "final"


def judge(result: AttemptResult) -> Verdict:
    """2xx is delivered; 410 Gone says the endpoint is gone for good; anything else may heal.

    Redirects count as failures: following one would send the signed prediction to a host
    the callback policy never checked.
    """
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return Verdict.DELIVERED
    if code == GONE:
        return Verdict.FINAL
    return Verdict.RETRYABLE


@dataclass(frozen=True)
class NextStep:
    """The job's delivery state after an attempt, and when to try again if at all."""

    state: Literal["delivered", "retrying", "dead"]
    retry_in_seconds: float | None = None
    reason: str | None = None
    """Why the delivery is dead: the verdict and the last error."""


def next_step(
    result: AttemptResult,
    *,
    attempt: int,
    max_attempts: int,
    backoff: Backoff,
    random: Callable[[], float],
) -> NextStep:
    """Decide after the `attempt`-th attempt (1-based) of at most `max_attempts`."""
    verdict = judge(result)
    if verdict is Verdict.DELIVERED:
        return NextStep("delivered")
    if verdict is Verdict.FINAL:
        return NextStep(
            "dead", reason=f"the receiver answered {result.status_code} Gone: {result.error}"
        )
    if attempt >= max_attempts:
        return NextStep(
            "dead",
            reason=f"gave up after {attempt} attempts; last error: {result.error}",
        )
    delay = backoff.delay(attempt, random, retry_after=result.retry_after_seconds)
    return NextStep("retrying", retry_in_seconds=delay)
