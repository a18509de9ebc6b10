"""The job-result store behind the gateway, off the event loop."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine, delete, text
from sqlmodel import Session, col

from shared.contracts import PredictionRequest
from shared.jobstore.store import JobStore
from shared.jobstore.tables import Job
from shared.jobstore.views import JobView


class ThreadedJobStore:
    """Runs the synchronous JobStore in worker threads so requests never block each other."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._store = JobStore(engine)

    async def find(self, request_id: str) -> JobView | None:
        return await asyncio.to_thread(self._store.get, request_id)

    async def create_pending(self, request: PredictionRequest, owner: str) -> tuple[JobView, bool]:
        return await asyncio.to_thread(self._store.create_pending, request, owner)

    async def discard_pending(self, request_id: str) -> None:
        await asyncio.to_thread(self._discard_pending, request_id)

    def _discard_pending(self, request_id: str) -> None:
        # Only a job nothing has answered yet, so a late prediction is never thrown away.
        with Session(self.engine) as session:
            session.execute(
                delete(Job).where(col(Job.request_id) == request_id, col(Job.status) == "pending")
            )
            session.commit()

    async def ping(self) -> None:
        """Raises when the database does not answer."""
        await asyncio.to_thread(self._ping)

    def _ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
