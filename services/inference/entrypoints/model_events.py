"""Keeps the worker's deployments and loaded models in step with the registry's events.

On each (re)connect the shared follower pins the end of `model-events`, then this refetches
every deployment from the registry, then applies the events after the pinned position: a
rollback takes effect within a second or two, and nothing published meanwhile is missed.
"""

from __future__ import annotations

import asyncio
import logging

from services.inference.domain.metrics import WorkerMetrics
from services.inference.service_layer.catalogue import DeploymentCatalogue, VersionKey
from services.inference.service_layer.model_store import ModelStore
from shared.contracts import ModelEvent
from shared.kafka.codec import UndecodableMessage
from shared.kafka.model_events import ModelEventsFollower
from shared.kafka.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


class DeploymentSync:
    """The worker's reactions to model events: refetch on sync, apply and preload on change."""

    def __init__(
        self, *, catalogue: DeploymentCatalogue, store: ModelStore, metrics: WorkerMetrics
    ) -> None:
        self._catalogue = catalogue
        self._store = store
        self._metrics = metrics
        self._preloads: set[asyncio.Task[None]] = set()

    def follower(
        self, *, bootstrap: str, topic: str, client_id: str, security: KafkaSecurity = PLAINTEXT
    ) -> ModelEventsFollower:
        return ModelEventsFollower(
            security=security,
            bootstrap=bootstrap,
            topic=topic,
            client_id=client_id,
            on_synced=self.resync,
            on_event=self.apply,
            on_unreadable=self.count_unreadable,
        )

    async def resync(self) -> None:
        serving = await self._catalogue.refresh_all()
        await self._store.preload(serving)
        log.info(
            "deployments fetched from the registry",
            extra={"models": len(self._catalogue.models), "versions": len(serving)},
        )

    async def apply(self, event: ModelEvent) -> None:
        self._metrics.model_events[event.event_type] += 1
        if event.event_type == "version.registered" and event.version is not None:
            self._store.forget_failure(event.model, event.version)
        if event.event_type in ("version.approved", "version.rejected") and event.version:
            rejected = event.event_type == "version.rejected"
            self._store.record_verdict(event.model, event.version, rejected=rejected)
        preload = await self._catalogue.apply(event)
        if preload:
            self._preload_in_background(preload)

    async def count_unreadable(self, _unreadable: UndecodableMessage) -> None:
        self._metrics.model_events["undecodable"] += 1

    def _preload_in_background(self, versions: set[VersionKey]) -> None:
        task = asyncio.create_task(self._store.preload(versions), name="preload-models")
        self._preloads.add(task)
        task.add_done_callback(self._preloads.discard)

    async def stop(self) -> None:
        for task in list(self._preloads):
            task.cancel()
        await asyncio.gather(*self._preloads, return_exceptions=True)
