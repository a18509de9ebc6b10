"""Backoff: exponential ceilings with a cap, full jitter within them, Retry-After honoured."""

from __future__ import annotations

import itertools
import random

import pytest

from services.delivery.domain.attempts import AttemptResult, next_step
from services.delivery.domain.backoff import Backoff

BACKOFF = Backoff(base_seconds=2.0, max_seconds=60.0)


def test_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    assert [BACKOFF.ceiling(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


def test_ceiling_is_monotone_and_capped_even_for_absurd_attempt_counts() -> None:
    ceilings = [BACKOFF.ceiling(n) for n in range(1, 2000)]
    assert all(a <= b for a, b in itertools.pairwise(ceilings))
    assert max(ceilings) == 60.0


def test_jitter_stays_between_zero_and_the_ceiling() -> None:
    source = random.Random(7)
    for attempt in range(1, 12):
        delays = [BACKOFF.delay(attempt, source.random) for _ in range(500)]
        assert all(0.0 <= delay <= BACKOFF.ceiling(attempt) for delay in delays)
        # Full jitter spreads over the whole range, not a narrow band near the ceiling.
        assert min(delays) < 0.1 * BACKOFF.ceiling(attempt)
        assert max(delays) > 0.9 * BACKOFF.ceiling(attempt)


def test_the_random_source_decides_where_in_the_range() -> None:
    assert BACKOFF.delay(3, lambda: 0.0) == 0.0
    assert BACKOFF.delay(3, lambda: 0.5) == 4.0
    assert BACKOFF.delay(3, lambda: 0.999) == pytest.approx(7.992)


def test_retry_after_is_a_floor_within_the_cap() -> None:
    assert BACKOFF.delay(1, lambda: 0.0, retry_after=30) == 30.0
    assert BACKOFF.delay(1, lambda: 0.0, retry_after=3600) == 60.0
    assert BACKOFF.delay(5, lambda: 0.9, retry_after=1) == pytest.approx(28.8)


def test_nonsense_schedules_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(base_seconds=0, max_seconds=1)
    with pytest.raises(ValueError):
        Backoff(base_seconds=10, max_seconds=1)
    with pytest.raises(ValueError):
        BACKOFF.ceiling(0)


def _result(status: int | None, error: str | None = "boom") -> AttemptResult:
    return AttemptResult(status_code=status, error=error, duration_ms=3.0)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(status: int) -> None:
    step = next_step(
        _result(status, None), attempt=1, max_attempts=3, backoff=BACKOFF, random=lambda: 0.5
    )
    assert step.state == "delivered" and step.retry_in_seconds is None


@pytest.mark.parametrize("status", [None, 301, 302, 400, 401, 404, 429, 500, 502, 503])
def test_other_answers_are_retried_with_backoff_until_the_last_attempt(
    status: int | None,
) -> None:
    retry = next_step(
        _result(status), attempt=2, max_attempts=3, backoff=BACKOFF, random=lambda: 0.5
    )
    assert retry.state == "retrying" and retry.retry_in_seconds == 2.0
    last = next_step(
        _result(status, "HTTP 503"), attempt=3, max_attempts=3, backoff=BACKOFF, random=lambda: 0.5
    )
    assert last.state == "dead"
    assert (
        last.reason is not None and "after 3 attempts" in last.reason and "HTTP 503" in last.reason
    )


def test_gone_is_final_at_once() -> None:
    step = next_step(
        _result(410, "HTTP 410 Gone"), attempt=1, max_attempts=8, backoff=BACKOFF, random=lambda: 0
    )
    assert step.state == "dead" and step.reason is not None and "410" in step.reason


def test_retry_after_from_the_receiver_is_used() -> None:
    result = AttemptResult(status_code=429, error="HTTP 429", duration_ms=1, retry_after_seconds=20)
    step = next_step(result, attempt=1, max_attempts=8, backoff=BACKOFF, random=lambda: 0.1)
    assert step.retry_in_seconds == 20.0
