"""Relays `model-events` from the outbox table to Kafka, so no committed change goes unannounced."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.registry.adapters.tables import OutboxEvent
from shared.contracts import ModelEvent
from shared.contracts.base import utc_now
from shared.kafka.publisher import Publisher
from shared.topics import MODEL_EVENTS

log = logging.getLogger(__name__)
BATCH = 100


class OutboxRelay:
    """Publishes unpublished outbox rows in order, marking each once Kafka acknowledged it.

    A crash between publish and mark re-sends the event; consumers dedupe by `event_id`.
    """

    def __init__(
        self,
        engine: Engine,
        publisher_factory: Callable[[], Publisher],
        *,
        poll_seconds: float,
    ) -> None:
        self._engine = engine
        self._publisher_factory = publisher_factory
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0

    def notify(self) -> None:
        """A change was committed: publish now rather than at the next poll (thread-safe)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        publisher: Publisher | None = None
        try:
            while True:
                try:
                    if publisher is None:
                        publisher = self._publisher_factory()
                        await publisher.start()
                    while await self._relay_batch(publisher) == BATCH:
                        pass
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox relay failed; retrying after the poll interval")
                    if publisher is not None:
                        await asyncio.gather(publisher.stop(), return_exceptions=True)
                    publisher = None
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
        finally:
            if publisher is not None:
                await publisher.stop()

    async def _relay_batch(self, publisher: Publisher) -> int:
        rows = await asyncio.to_thread(self._pending)
        for row_id, key, payload in rows:
            event = ModelEvent.model_validate_json(payload)
            await publisher.publish(MODEL_EVENTS, event, key=key)
            await asyncio.to_thread(self._mark_published, row_id)
            self.published += 1
        return len(rows)

    def _pending(self) -> list[tuple[int, str | None, str]]:
        with Session(self._engine) as session:
            query = (
                select(OutboxEvent)
                .where(col(OutboxEvent.published_at).is_(None))
                .order_by(col(OutboxEvent.id))
                .limit(BATCH)
            )
            return [(row.id, row.key, row.payload) for row in session.exec(query) if row.id]

    def _mark_published(self, row_id: int) -> None:
        with Session(self._engine) as session:
            row = session.get(OutboxEvent, row_id)
            if row is not None:
                row.published_at = utc_now()
                session.add(row)
                session.commit()

    def pending_count(self) -> int:
        with Session(self._engine) as session:
            query = select(OutboxEvent.id).where(col(OutboxEvent.published_at).is_(None))
            return len(session.exec(query).all())
