"""Token buckets per key (an API key, a client address): a burst, then a sustained rate.

Pure: the caller passes the time, so tests need no clock and no sleeps. `RateLimiter`
keeps buckets in one process; the gateway's database-backed limiter stores each bucket's
state and takes tokens with the same `TokenBucket`, so every replica draws from one bucket.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeVar

from shared.http_api import ServiceError

ErrorT = TypeVar("ErrorT", bound=ServiceError)


@dataclass(frozen=True)
class Decision:
    """Whether a request may pass, and if not, how long until it would."""

    allowed: bool
    retry_after: float = 0.0

    @property
    def retry_after_header(self) -> str:
        """`Retry-After` in whole seconds, never below 1, so clients do not spin."""
        return str(max(1, math.ceil(self.retry_after)))


class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; each request takes one."""

    def __init__(self, *, rate: float, burst: int, now: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    @classmethod
    def restore(cls, *, rate: float, burst: int, tokens: float, updated: float) -> TokenBucket:
        """A bucket as stored: `tokens` left at time `updated`."""
        bucket = cls(rate=rate, burst=burst, now=updated)
        bucket._tokens = min(float(burst), max(0.0, tokens))
        return bucket

    @property
    def state(self) -> tuple[float, float]:
        """(tokens, updated): what `restore` needs to continue where this bucket is."""
        return self._tokens, self._updated

    def tokens(self, now: float) -> float:
        """Tokens available at `now` (a clock going backwards adds none)."""
        elapsed = max(0.0, now - self._updated)
        return min(float(self.burst), self._tokens + elapsed * self.rate)

    def take(self, now: float, cost: float = 1.0) -> Decision:
        available = self.tokens(now)
        self._updated = max(self._updated, now)
        if available >= cost:
            self._tokens = available - cost
            return Decision(allowed=True)
        self._tokens = available
        return Decision(allowed=False, retry_after=(cost - available) / self.rate)

    def is_full(self, now: float) -> bool:
        """A full bucket is indistinguishable from a new one, so it may be forgotten."""
        return self.tokens(now) >= self.burst


class RateLimiter:
    """One bucket per key, at most `max_keys` of them, least recently used dropped first."""

    def __init__(self, *, rate: float, burst: int, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str, now: float) -> Decision:
        """Take a token from `key`'s bucket."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(rate=self.rate, burst=self.burst, now=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._evict(now, keep=key)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def peek(self, key: str, now: float) -> Decision:
        """Whether `key` has a token left, taking none (an unknown key has a full bucket)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return Decision(allowed=True)
        available = bucket.tokens(now)
        if available >= 1.0:
            return Decision(allowed=True)
        return Decision(allowed=False, retry_after=(1.0 - available) / bucket.rate)

    def _evict(self, now: float, *, keep: str) -> None:
        """Forget full buckets first (no loss), then the least recently used ones."""
        full = [k for k, bucket in self._buckets.items() if k != keep and bucket.is_full(now)]
        for key in full:
            if len(self._buckets) <= self.max_keys:
                return
            del self._buckets[key]
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


def failed_authentications_refusal(error: type[ErrorT], address: str, decision: Decision) -> ErrorT:
    """The 429 for an address past its budget of failed authentications."""
    return error(
        f"too many failed authentications from {address}; retry in {decision.retry_after_header} s",
        details={"retry_after_seconds": decision.retry_after},
        headers={"Retry-After": decision.retry_after_header},
    )
