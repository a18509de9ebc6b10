"""What time does to the join: feedback that waited too long, predictions kept too long.

Feedback whose prediction never came is marked `expiring`, its dead letter is published,
then it is marked `unmatched`; a crash in between publishes the letter again rather than
losing it. Requests and predictions older than the retention are forgotten; labels stay.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.feedback.adapters.feedback_rows import stored_feedback
from services.feedback.adapters.store import FeedbackStore
from shared.contracts import Feedback

log = logging.getLogger(__name__)
DAY_SECONDS = 24 * 60 * 60
LETTERS_PER_SWEEP = 1000


@dataclass(frozen=True)
class SweepPolicy:
    match_wait_seconds: float
    retention_seconds: float


class Sweeper:
    """One sweep: expire, dead-letter, forget. Safe to run on every replica at once."""

    def __init__(
        self,
        store: FeedbackStore,
        policy: SweepPolicy,
        *,
        publish_unmatched: Callable[[Feedback, str], Awaitable[None]],
        run: Callable[..., Awaitable[object]],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._policy = policy
        self._publish_unmatched = publish_unmatched
        self._run = run
        self._clock = clock

    def reason(self) -> str:
        wait, days = self._policy.match_wait_seconds, self._policy.retention_seconds / DAY_SECONDS
        return (
            f"unmatched: no prediction and request for this request id arrived within "
            f"{wait:g} s of the feedback, and none is retained (predictions are kept "
            f"{days:g} days)"
        )

    async def sweep(self) -> int:
        """Dead-letter what waited too long; returns how many feedback records."""
        now = self._clock()
        expiring = await self._run(self._expire, now - self._policy.match_wait_seconds)
        assert isinstance(expiring, list)
        reason = self.reason()
        for row in expiring:
            await self._publish_unmatched(stored_feedback(row), reason)
        if expiring:
            await self._run(self._mark_unmatched, [row.feedback_id for row in expiring], reason)
            log.info("feedback dead-lettered as unmatched", extra={"count": len(expiring)})
        await self._run(self._forget, now - self._policy.retention_seconds)
        return len(expiring)

    def _expire(self, received_before: float) -> list[object]:
        store = self._store
        with store.transaction() as connection:
            store.expire_pending(connection, received_before=received_before)
            return list(store.expiring(connection, limit=LETTERS_PER_SWEEP))

    def _mark_unmatched(self, feedback_ids: list[str], reason: str) -> None:
        with self._store.transaction() as connection:
            self._store.mark_unmatched(connection, feedback_ids, reason)

    def _forget(self, cutoff: float) -> None:
        with self._store.transaction() as connection:
            self._store.forget_before(connection, cutoff=cutoff)
