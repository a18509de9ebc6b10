"""Token buckets: burst, refill, retry-after, and one bucket per key."""

from __future__ import annotations

import pytest

from shared.rate_limit import Decision, RateLimiter, TokenBucket


def test_a_full_bucket_allows_the_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=1.0, burst=3, now=100.0)

    assert [bucket.take(100.0).allowed for _ in range(3)] == [True, True, True]
    refused = bucket.take(100.0)

    assert not refused.allowed
    assert refused.retry_after == pytest.approx(1.0)


def test_tokens_refill_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=4, now=0.0)
    for _ in range(4):
        bucket.take(0.0)

    assert bucket.tokens(0.25) == pytest.approx(0.5)
    assert not bucket.take(0.25).allowed
    assert bucket.take(0.5).allowed  # 1 token after half a second at 2/s
    assert bucket.tokens(100.0) == 4  # never above the burst


def test_retry_after_is_the_time_until_one_token() -> None:
    bucket = TokenBucket(rate=0.5, burst=1, now=0.0)
    bucket.take(0.0)

    decision = bucket.take(0.5)  # 0.25 token there, 0.75 missing at 0.5/s

    assert decision.retry_after == pytest.approx(1.5)
    assert decision.retry_after_header == "2"


def test_a_refused_request_takes_no_token() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=0.0)
    bucket.take(0.0)
    for _ in range(5):
        assert not bucket.take(0.5).allowed

    assert bucket.take(1.0).allowed


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.0, "1"), (0.01, "1"), (1.0, "1"), (1.2, "2"), (59.9, "60")]
)
def test_retry_after_header_is_whole_seconds_at_least_one(seconds: float, header: str) -> None:
    assert Decision(allowed=False, retry_after=seconds).retry_after_header == header


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    bucket = TokenBucket(rate=1.0, burst=2, now=10.0)
    bucket.take(10.0)
    bucket.take(10.0)

    assert not bucket.take(5.0).allowed
    assert bucket.tokens(10.5) == pytest.approx(0.5)


def test_each_key_has_its_own_bucket() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)

    assert limiter.check("a", 0.0).allowed
    assert limiter.check("a", 0.0).allowed
    assert not limiter.check("a", 0.0).allowed
    assert limiter.check("b", 0.0).allowed


def test_limiter_forgets_full_buckets_before_busy_ones() -> None:
    limiter = RateLimiter(rate=1.0, burst=2, max_keys=2)
    limiter.check("busy", 0.0)
    limiter.check("busy", 0.0)
    limiter.check("idle", 0.0)

    limiter.check("new", 1.0)  # "idle" is full again at t=1, "busy" holds 1 token

    assert len(limiter) == 2
    assert limiter.check("busy", 1.0).allowed
    assert not limiter.check("busy", 1.0).allowed  # its bucket survived, not reset


def test_limiter_drops_the_least_recently_used_when_none_is_full() -> None:
    limiter = RateLimiter(rate=1.0, burst=2, max_keys=2)
    limiter.check("older", 0.0)
    limiter.check("busy", 0.0)
    limiter.check("busy", 0.0)

    limiter.check("new", 0.5)

    assert len(limiter) == 2
    assert not limiter.check("busy", 0.5).allowed  # kept: "older" went instead


def test_a_new_key_is_never_evicted_by_its_own_arrival() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=1)
    limiter.check("old", 0.0)

    assert limiter.check("new", 0.0).allowed
    assert not limiter.check("new", 0.0).allowed


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=rate, burst=burst, now=0.0)


def test_a_restored_bucket_continues_where_the_stored_one_was() -> None:
    original = TokenBucket(rate=1.0, burst=3, now=10.0)
    original.take(10.0)
    original.take(10.0)
    tokens, updated = original.state

    restored = TokenBucket.restore(rate=1.0, burst=3, tokens=tokens, updated=updated)

    assert restored.state == (1.0, 10.0)
    assert restored.take(10.0).allowed
    assert not restored.take(10.0).allowed
    assert restored.tokens(10.5) == pytest.approx(0.5)
