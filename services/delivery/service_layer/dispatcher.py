"""The delivery loop: send claimed webhooks concurrently; claim more from the store when due."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from services.delivery.service_layer.delivery import DEAD_LETTER_BATCH, WebhookDelivery
from shared.contracts.base import utc_now
from shared.jobstore.deliveries import DueDelivery
from shared.jobstore.store import JobStore
from shared.store_thread import RunInThread

log = logging.getLogger(__name__)
RECORDING_PER_SLOT = 4
"""Outcomes waiting for their transaction, per sending slot, before sending waits."""


class DeliveryDispatcher:
    """Keeps up to `max_concurrency` attempts in flight, and as many claimed jobs ready.

    Work arrives two ways. Ingest claims the webhooks of the predictions it records in
    the same transaction and hands them over (`reserve` then `take`): they are sent at
    once, with no further database round trip. Everything else (retries coming due, jobs
    ingest had no room for, jobs whose replica died) is claimed from the store when ingest
    says some are due (`wake`), when a claim came back full, and every `poll_interval`.

    Claimed jobs wait in memory for at most `max_concurrency` others ahead of them, so a
    claimed job starts within one request timeout; with the lease over twice the request
    timeout (a settings rule) no claim runs out before its attempt is recorded.

    A sending slot is freed once the receiver has answered; the outcome then waits for its
    transaction (shared with the others, see OutcomeRecorder) without holding the slot,
    so a busy database slows recording, not sending. Outcomes awaiting their transaction
    are bounded too (`RECORDING_PER_SLOT` per slot): past that, sending waits.
    """

    def __init__(
        self,
        delivery: WebhookDelivery,
        store: JobStore,
        *,
        max_concurrency: int,
        poll_interval_seconds: float,
        lease: timedelta,
        run: RunInThread = asyncio.to_thread,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._delivery = delivery
        self._store = store
        self._max_concurrency = max_concurrency
        self._poll_interval = poll_interval_seconds
        self._lease = lease
        self._run = run
        self._clock = clock
        self._wake = asyncio.Event()
        self._ready: collections.deque[DueDelivery] = collections.deque()
        self._reserved = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._sending = 0
        self._recording = 0
        self._store_may_have_due = True
        self._dead_letters_may_be_due = True
        self._next_poll = time.monotonic()
        self._stopping = False

    def wake(self) -> None:
        """Due webhooks are waiting in the store: claim them (call from the event loop)."""
        self._store_may_have_due = True
        self._wake.set()

    def reserve(self, wanted: int) -> int:
        """Room for up to `wanted` jobs claimed elsewhere; give it back with `take`."""
        room = max(0, min(wanted, 2 * self._max_concurrency - self._load()))
        self._reserved += room
        return room

    def take(self, jobs: Sequence[DueDelivery], *, reserved: int) -> None:
        """Send jobs claimed by someone else (at most `reserved` of them); frees the rest."""
        self._reserved -= reserved
        self._ready.extend(jobs)
        self._start_ready()

    def _load(self) -> int:
        return self._sending + len(self._ready) + self._reserved

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            if time.monotonic() >= self._next_poll:
                self._next_poll = time.monotonic() + self._poll_interval
                self._store_may_have_due = self._dead_letters_may_be_due = True
            try:
                await self._claim_from_store()
                await self._publish_dead_letters()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery loop could not reach the store or Kafka; will retry")
            await self._wait_for_work()

    def _wants_more(self) -> bool:
        """Fewer jobs wait than one round of slots: time to claim (in bulk) from the store."""
        return len(self._ready) + self._reserved < self._max_concurrency and not self._stopping

    async def _claim_from_store(self) -> None:
        """Claim due jobs up to the room left; a full claim means more may be due."""
        if not self._store_may_have_due or not self._wants_more():
            return
        room = self.reserve(2 * self._max_concurrency)
        claimed: list[DueDelivery] = []
        try:
            if room > 0:
                claimed = await self._run(
                    self._store.claim_due_deliveries,
                    now=self._clock(),
                    lease=self._lease,
                    limit=room,
                )
                self._store_may_have_due = len(claimed) == room
        finally:
            self.take(claimed, reserved=room)

    async def _publish_dead_letters(self) -> None:
        """Only when a delivery died here, or on the poll: the outbox query is not free."""
        if not self._dead_letters_may_be_due:
            return
        self._dead_letters_may_be_due = False
        try:
            published = await self._delivery.publish_dead_letters()
        except BaseException:
            self._dead_letters_may_be_due = True
            raise
        if published >= DEAD_LETTER_BATCH:
            self._dead_letters_may_be_due = True
            self._wake.set()

    def _start_ready(self) -> None:
        while (
            self._ready
            and self._sending < self._max_concurrency
            and self._recording < RECORDING_PER_SLOT * self._max_concurrency
            and not self._stopping
        ):
            job = self._ready.popleft()
            self._sending += 1
            task = asyncio.create_task(self._deliver(job), name=f"webhook-{job.request_id}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    def _slot_freed(self) -> None:
        self._start_ready()
        if self._store_may_have_due and self._wants_more():
            self._wake.set()

    async def _deliver(self, job: DueDelivery) -> None:
        try:
            try:
                attempted = await self._delivery.attempt(job)
            except BaseException:
                self._sending -= 1
                self._slot_freed()
                raise
            self._recording += 1
            self._sending -= 1
            self._slot_freed()
            try:
                step = await self._delivery.record(attempted)
            finally:
                self._recording -= 1
                self._slot_freed()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim's lease runs out and the job comes due again.
            log.exception(
                "delivery attempt failed unexpectedly", extra={"request_id": job.request_id}
            )
            return
        if step is None:
            return
        if step.state == "dead":
            self._dead_letters_may_be_due = True
            self._wake.set()
        elif step.state == "retrying" and (step.retry_in_seconds or 0.0) < self._poll_interval:
            # Sooner than the next poll: look for it when it is due.
            asyncio.get_running_loop().call_later(step.retry_in_seconds or 0.0, self.wake)

    async def _wait_for_work(self) -> None:
        timeout = max(0.0, self._next_poll - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming; let attempts under way finish within `grace_seconds`.

        Attempts cut short, and claimed jobs never started, keep their claim, so they are
        retried once the lease runs out.
        """
        self._stopping = True
        self._wake.set()
        self._ready.clear()
        if self._in_flight:
            _done, pending = await asyncio.wait(set(self._in_flight), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        """Attempts sending or waiting for their outcome to be recorded."""
        return len(self._in_flight)
