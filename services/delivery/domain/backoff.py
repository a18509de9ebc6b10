"""Exponential backoff with full jitter between webhook attempts.

Full jitter (a uniformly random wait up to the exponential ceiling) spreads the retries of
many failed webhooks over time, so a receiver that comes back is not hit by all of them
at the same instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

FACTOR = 2.0


@dataclass(frozen=True)
class Backoff:
    """The retry schedule: `base * 2**(n-1)` after the n-th failed attempt, capped."""

    base_seconds: float
    max_seconds: float

    def __post_init__(self) -> None:
        if self.base_seconds <= 0:
            raise ValueError("the backoff base must be positive")
        if self.max_seconds < self.base_seconds:
            raise ValueError("the backoff cap must be at least the base")

    def ceiling(self, failed_attempts: int) -> float:
        """The longest wait after `failed_attempts` failures (at least 1)."""
        if failed_attempts < 1:
            raise ValueError("a wait follows at least one failed attempt")
        # Cap the exponent first: 2**n overflows a float long before attempts run out.
        exponent = min(failed_attempts - 1, 64)
        return min(self.max_seconds, self.base_seconds * FACTOR**exponent)

    def delay(
        self,
        failed_attempts: int,
        random: Callable[[], float],
        *,
        retry_after: float | None = None,
    ) -> float:
        """Seconds to wait before the next attempt.

        `random` returns a number in [0, 1) (e.g. `random.random`), injected so tests can
        pin it. A receiver's `Retry-After` is honoured as a lower bound, within the cap.
        """
        jittered = random() * self.ceiling(failed_attempts)
        if retry_after is not None and retry_after > 0:
            jittered = max(jittered, min(retry_after, self.max_seconds))
        return jittered
