"""Record delivery outcomes by group commit: one transaction for all that finished meanwhile."""

from __future__ import annotations

import asyncio

from shared.jobstore.deliveries import DeliveryOutcome
from shared.jobstore.store import JobStore
from shared.store_thread import RunInThread

MAX_OUTCOMES_PER_TRANSACTION = 500
GATHER_SECONDS = 0.01


class OutcomeRecorder:
    """Each caller waits until its own outcome is durable, but shares the transaction.

    A transaction per attempt caps delivery at what the database commits per second, and
    its fixed cost was most of the store's work. Here a transaction takes every outcome
    that arrived within `gather_seconds` of the first one (or while the previous
    transaction ran). The wait delays no webhook: the receiver has its answer by then,
    and the sender's slot is free; it only delays the record, well within the lease.
    """

    def __init__(
        self,
        store: JobStore,
        run: RunInThread,
        *,
        gather_seconds: float = GATHER_SECONDS,
        max_batch: int = MAX_OUTCOMES_PER_TRANSACTION,
    ) -> None:
        self._store = store
        self._run = run
        self._gather = gather_seconds
        self._max_batch = max_batch
        self._waiting: list[tuple[DeliveryOutcome, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, outcome: DeliveryOutcome) -> bool:
        """Record `outcome`; False if the job was no longer ours (another replica took it).

        Raises what the database raised, so the caller leaves the job to its lease.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="delivery-outcomes")
        return await future

    async def _write(self) -> None:
        while self._waiting:
            if len(self._waiting) < self._max_batch:
                await asyncio.sleep(self._gather)
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                applied = await self._run(
                    self._store.record_deliveries, [outcome for outcome, _ in batch]
                )
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), recorded in zip(batch, applied, strict=True):
                if not future.done():
                    future.set_result(recorded)

    async def aclose(self) -> None:
        """Wait for the outcomes handed over so far to be written."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
