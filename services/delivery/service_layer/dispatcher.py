"""The delivery loop: claim due webhooks from the store and send them concurrently."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from services.delivery.service_layer.delivery import WebhookDelivery
from shared.contracts.base import utc_now
from shared.jobstore.deliveries import DueDelivery
from shared.jobstore.store import JobStore

log = logging.getLogger(__name__)


class DeliveryDispatcher:
    """Keeps up to `max_concurrency` attempts in flight; never more, never idle when work is due.

    It claims only as many jobs as it has free slots, so claimed jobs are never left
    waiting behind a slow receiver while their lease runs out. It looks for work when
    woken (new predictions recorded, an attempt finished) or every `poll_interval`.
    """

    def __init__(
        self,
        delivery: WebhookDelivery,
        store: JobStore,
        *,
        max_concurrency: int,
        poll_interval_seconds: float,
        lease: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._delivery = delivery
        self._store = store
        self._max_concurrency = max_concurrency
        self._poll_interval = poll_interval_seconds
        self._lease = lease
        self._clock = clock
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = False

    def wake(self) -> None:
        """Look for due work now (call from the event loop's thread)."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                more_may_be_due = await self._claim_and_start()
                await self._delivery.publish_dead_letters()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery loop could not reach the store or Kafka; will retry")
                more_may_be_due = False
            if more_may_be_due and len(self._in_flight) < self._max_concurrency:
                continue
            await self._wait_for_work()

    async def _claim_and_start(self) -> bool:
        """Claim as many due jobs as there are free slots; True if the claim was full."""
        free = self._max_concurrency - len(self._in_flight)
        if free <= 0:
            return False
        due = await asyncio.to_thread(
            self._store.claim_due_deliveries, now=self._clock(), lease=self._lease, limit=free
        )
        for job in due:
            task = asyncio.create_task(self._deliver(job), name=f"webhook-{job.request_id}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(due) == free

    async def _deliver(self, job: DueDelivery) -> None:
        try:
            await self._delivery.deliver(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim's lease runs out and the job comes due again.
            log.exception(
                "delivery attempt failed unexpectedly", extra={"request_id": job.request_id}
            )
        finally:
            self._wake.set()

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming; let attempts under way finish within `grace_seconds`.

        Attempts cut short keep their claim, so they are retried once the lease runs out.
        """
        self._stopping = True
        self._wake.set()
        if self._in_flight:
            _done, pending = await asyncio.wait(set(self._in_flight), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)
