"""One inference worker copy: the shared consume loop around the requests processor, the
model-events follower and the health endpoint."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from services.inference.adapters.registry_source import RegistryModelSource
from services.inference.adapters.requests_processor import RequestsProcessor
from services.inference.domain.metrics import WorkerMetrics, render_prometheus
from services.inference.entrypoints.model_events import DeploymentSync
from services.inference.service_layer.inference import InferenceService
from services.inference.service_layer.ports import RegistryUnavailable
from services.inference.settings import InferenceSettings
from shared.kafka.model_events import ModelEventsFollower
from shared.runtime.consumer import GroupConsumer
from shared.runtime.health import HealthServer, create_health_app
from shared.runtime.retry import retrying

log = logging.getLogger(__name__)


class InferenceWorker:
    """Requests consumer and predictions producer (the shared runtime), model events, health."""

    def __init__(
        self,
        settings: InferenceSettings,
        *,
        service: InferenceService,
        source: RegistryModelSource,
        events: ModelEventsFollower,
        deployment_sync: DeploymentSync,
        metrics: WorkerMetrics,
        processor: RequestsProcessor,
        consumer: GroupConsumer,
    ) -> None:
        self.settings = settings
        self.service = service
        self.metrics = metrics
        self.processor = processor
        self.consumer = consumer
        self._source = source
        self._events = events
        self._deployment_sync = deployment_sync
        self._health = HealthServer(
            create_health_app(self, service="inference worker"),
            host=settings.worker_host,
            port=settings.worker_port,
        )
        self._stopped = False

    @property
    def health_port(self) -> int | None:
        return self._health.port

    async def start(self) -> None:
        """Check the registry key, fetch deployments, then start consuming.

        Raises StopRequested if a stop is requested while waiting for the registry.
        """
        await self._health.start()
        identity = await self.consumer.until_stopped_or(self._registry_identity())
        log.info(
            "registry key accepted",
            extra={"key": identity.get("name"), "role": identity.get("role")},
        )
        self._events.start()
        await self.consumer.until_stopped_or(self._events.synced.wait())
        await self.consumer.start()
        log.info(
            "inference worker started",
            extra={
                "topic": self.consumer.config.topics[0],
                "group": self.settings.consumer_group,
                "delivery_mode": self.settings.delivery_mode,
                "health_port": self.health_port,
            },
        )

    async def _registry_identity(self) -> dict[str, Any]:
        """The key's name and role; waits for a registry that is not up yet."""
        async for attempt in retrying(
            on=(RegistryUnavailable,), log=log, what="waiting for the registry"
        ):
            with attempt:
                return await self._source.whoami()
        raise AssertionError("unreachable: retrying never gives up")

    def request_stop(self) -> None:
        """Finish the current batch, then leave the loop (safe from a signal handler)."""
        self.consumer.request_stop()

    async def run_until_stopped(self) -> None:
        """Consume until `request_stop`; a fatal error stops the loop and is raised."""
        await self.consumer.run_until_stopped()

    async def stop(self) -> None:
        """Stop consuming, flush outputs, leave the group and close everything (idempotent)."""
        self.request_stop()
        if self._stopped:
            return
        self._stopped = True
        await self.consumer.stop()
        await self._events.stop()
        await self._deployment_sync.stop()
        await self._health.stop()
        await asyncio.to_thread(self._source.close)
        log.info("inference worker stopped", extra={"records": self.metrics.records})

    # -- health ----------------------------------------------------------------------------

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        failure = self.consumer.failure
        alive = failure is None
        return alive, {"status": "ok" if alive else "failed", "error": repr(failure)}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        consumer = self.consumer
        assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        checks = {
            "consumer_started": consumer.started,
            "partitions_assigned": bool(assigned),
            "deployments_synced": self._events.synced.is_set(),
            "loop_healthy": consumer.failure is None,
            "stopping": consumer.stopping,
        }
        ready = all(value for key, value in checks.items() if key != "stopping") and not (
            consumer.stopping
        )
        details: dict[str, Any] = {
            "status": "ready" if ready else "not ready",
            "checks": checks,
            "partitions": [tp.partition for tp in assigned],
            "models": sorted(self.service.catalogue.models),
            "loaded_versions": [f"{m}:{v}" for m, v in self.service.store.loaded_versions],
            "shadow_agreement": {
                model: {
                    "agreed": tally.agreed.get(model, 0),
                    "compared": compared,
                    "rate": tally.rate(model),
                }
                for tally in (self.metrics.shadow,)
                for model, compared in tally.compared.items()
            },
        }
        return ready, details

    def metrics_text(self) -> str:
        lag = {(tp.topic, str(tp.partition)): count for tp, count in self.consumer.lag().items()}
        cache = self.service.cache
        return render_prometheus(
            self.metrics,
            cache_hits=cache.hits,
            cache_misses=cache.misses,
            cache_entries=len(cache),
            consumer_lag=lag,
            assigned_partitions=len(self.consumer.assignment()),
        )
