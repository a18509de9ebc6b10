"""Where the gateway's token buckets live: in this process, or in the job store's database.

In-process buckets cost nothing but hold per replica (N replicas let a key through at N
times the rate). Database buckets hold across replicas at the price of a round trip per
request: a replica reads the key's bucket, takes a token with the pure `TokenBucket`, and
writes the bucket back only if its version is still the one it read (optimistic
concurrency, portable to SQLite and PostgreSQL, no lock held across the computation); a
replica that lost the race reads again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from services.gateway.service_layer.errors import Unavailable
from shared.jobstore.tables import RateLimitBucket
from shared.rate_limit import Decision, RateLimiter, TokenBucket

BUCKETS = RateLimitBucket.__table__  # type: ignore[attr-defined]
MAX_RACES = 50
"""Lost races before a check gives up (only under pathological contention on one key)."""


class ProcessRateLimits:
    """Buckets in this process (`MODELBUS_RATE_LIMIT_SCOPE=process`)."""

    def __init__(self, limiter: RateLimiter, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = limiter.rate
        self.burst = limiter.burst
        self._limiter = limiter
        self._clock = clock

    async def check(self, key: str) -> Decision:
        return self._limiter.check(key, self._clock())


class DatabaseRateLimits:
    """Buckets in the job store's database, shared by every replica using it
    (`MODELBUS_RATE_LIMIT_SCOPE=database`)."""

    def __init__(
        self,
        engine: Engine,
        *,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        TokenBucket(rate=rate, burst=burst, now=0.0)  # the same checks of rate and burst
        self.rate = rate
        self.burst = burst
        self._engine = engine
        self._clock = clock

    async def check(self, key: str) -> Decision:
        """Raises Unavailable (503) when the database does not answer."""
        try:
            return await asyncio.to_thread(self.take, key)
        except SQLAlchemyError as error:
            raise Unavailable(
                f"the rate-limit database did not answer ({type(error).__name__})"
            ) from None

    def take(self, key: str) -> Decision:
        """Take a token from `key`'s shared bucket (blocking: one or more round trips)."""
        for _ in range(MAX_RACES):
            decision = self._try_take(key)
            if decision is not None:
                return decision
        raise Unavailable(f"rate limit: {MAX_RACES} concurrent updates of one bucket in a row")

    def _try_take(self, key: str) -> Decision | None:
        """The decision, or None when another replica changed the bucket meanwhile."""
        now = self._clock()
        with self._engine.connect() as connection:
            row = connection.execute(
                select(BUCKETS.c.tokens, BUCKETS.c.updated, BUCKETS.c.version).where(
                    BUCKETS.c.key == key
                )
            ).first()
            if row is None:
                bucket = TokenBucket(rate=self.rate, burst=self.burst, now=now)
                decision = bucket.take(now)
                tokens, updated = bucket.state
                try:
                    connection.execute(
                        insert(BUCKETS).values(key=key, tokens=tokens, updated=updated, version=0)
                    )
                    connection.commit()
                except IntegrityError:  # another replica created it first
                    connection.rollback()
                    return None
                return decision
            bucket = TokenBucket.restore(
                rate=self.rate, burst=self.burst, tokens=row.tokens, updated=row.updated
            )
            decision = bucket.take(now)
            if not decision.allowed:
                return decision  # nothing taken: a flood of refusals writes nothing
            tokens, updated = bucket.state
            written = connection.execute(
                update(BUCKETS)
                .where(BUCKETS.c.key == key, BUCKETS.c.version == row.version)
                .values(tokens=tokens, updated=updated, version=row.version + 1)
            )
            connection.commit()
            return decision if written.rowcount == 1 else None
