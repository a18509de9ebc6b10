"""Composition root of the inference workers: settings -> registry, catalogue, service, worker."""

from __future__ import annotations

from services.inference.adapters.registry_source import RegistryModelSource
from services.inference.domain.answers import Output
from services.inference.domain.metrics import WorkerMetrics
from services.inference.domain.result_cache import ResultCache
from services.inference.entrypoints.kafka_worker import InferenceWorker
from services.inference.entrypoints.model_events import DeploymentSync
from services.inference.service_layer.catalogue import DeploymentCatalogue
from services.inference.service_layer.inference import CacheKey, InferenceService
from services.inference.service_layer.model_store import ModelStore
from services.inference.settings import InferenceSettings
from shared.clients.registry import RegistryClient
from shared.topics import MODEL_EVENTS


def build_service(
    settings: InferenceSettings, source: RegistryModelSource, metrics: WorkerMetrics
) -> InferenceService:
    """The transport-free serving core, for the Kafka worker or any other entry point."""
    catalogue = DeploymentCatalogue(
        source,
        unknown_ttl_seconds=settings.unknown_model_ttl_seconds,
        max_unknown=settings.max_remembered_failures,
    )
    metrics.prediction_labels = catalogue.metric_labels
    store = ModelStore(
        source,
        failure_ttl_seconds=settings.failed_load_ttl_seconds,
        max_versions=settings.max_loaded_versions,
        max_bytes=settings.max_loaded_bytes,
        max_failures=settings.max_remembered_failures,
        serving=catalogue.serving_versions,
    )
    cache: ResultCache[CacheKey, Output] = ResultCache(settings.result_cache_size)
    return InferenceService(
        catalogue,
        store,
        cache=cache,
        metrics=metrics,
        range_tolerance=settings.range_tolerance,
        shadow_tolerance=settings.shadow_tolerance,
    )


def build_worker(settings: InferenceSettings) -> InferenceWorker:
    """A worker ready to `start()`; nothing connects until then."""
    metrics = WorkerMetrics()
    source = RegistryModelSource(
        RegistryClient(
            settings.registry_url,
            settings.registry_api_key.get_secret_value(),
            timeout=settings.registry_timeout_seconds,
        )
    )
    service = build_service(settings, source, metrics)
    sync = DeploymentSync(catalogue=service.catalogue, store=service.store, metrics=metrics)
    events = sync.follower(
        bootstrap=settings.kafka_bootstrap,
        topic=settings.topic(MODEL_EVENTS.name),
        client_id=f"{settings.kafka_client_id}-inference-events-{settings.worker_instance}",
        security=settings.kafka_security,
    )
    return InferenceWorker(
        settings,
        service=service,
        source=source,
        events=events,
        deployment_sync=sync,
        metrics=metrics,
    )
