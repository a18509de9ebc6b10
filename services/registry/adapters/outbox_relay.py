"""Relays `model-events` from the outbox table to Kafka, so no committed change goes unannounced."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from services.registry.adapters.tables import OutboxEvent
from shared.contracts import ModelEvent
from shared.contracts.base import utc_now
from shared.kafka.publisher import Publisher
from shared.topics import MODEL_EVENTS

log = logging.getLogger(__name__)
BATCH = 100
LOCK_TIMEOUT_SECONDS = 30
T = TypeVar("T")


async def _in_thread(call: Callable[..., T], *args: Any) -> T:
    """Run a blocking database call in a thread; if cancelled meanwhile, let it finish
    first, so a session is never used from two threads at once."""
    running = asyncio.ensure_future(asyncio.to_thread(call, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.gather(running, return_exceptions=True)
        raise


class OutboxRelay:
    """Publishes unpublished outbox rows in order, marking them once Kafka acknowledged them.

    A batch is claimed with `SELECT ... FOR UPDATE` and published inside that transaction, so
    when several registry replicas share a PostgreSQL database one relay publishes at a time
    and each model's events reach the topic in the order they were written. (SKIP LOCKED
    would let a second relay publish later rows of a model before the first finished the
    earlier ones.) SQLite has no row locks: run one registry process on it. A crash before
    the commit re-sends the batch; consumers dedupe by `event_id` and deployment revision.
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
        session = Session(self._engine)
        try:
            rows = await _in_thread(self._claim_pending, session)
            for row in rows:
                event = ModelEvent.model_validate_json(row.payload)
                await publisher.publish(MODEL_EVENTS, event, key=row.key)
            await _in_thread(self._mark_published, session, rows)
        finally:
            await _in_thread(session.close)
        self.published += len(rows)
        return len(rows)

    @staticmethod
    def _claim_pending(session: Session) -> list[OutboxEvent]:
        """The oldest unpublished rows, locked until this transaction ends.

        A relay that finds them locked waits (for a bounded time), then skips whatever the
        other one published meanwhile.
        """
        if session.get_bind().dialect.name == "postgresql":
            session.exec(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'"))  # type: ignore[call-overload]
        query = (
            select(OutboxEvent)
            .where(col(OutboxEvent.published_at).is_(None))
            .order_by(col(OutboxEvent.id))
            .limit(BATCH)
            .with_for_update()
        )
        return list(session.exec(query))

    @staticmethod
    def _mark_published(session: Session, rows: list[OutboxEvent]) -> None:
        published_at = utc_now()
        for row in rows:
            row.published_at = published_at
            session.add(row)
        session.commit()

    def pending_count(self) -> int:
        with Session(self._engine) as session:
            query = select(OutboxEvent.id).where(col(OutboxEvent.published_at).is_(None))
            return len(session.exec(query).all())
