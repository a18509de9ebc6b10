"""Composition root of the inference workers: settings -> registry, catalogue, service, worker."""

from __future__ import annotations

from services.inference.adapters.kafka_records import OversizedRecords
from services.inference.adapters.registry_source import RegistryModelSource
from services.inference.adapters.requests_processor import RequestsProcessor
from services.inference.domain.answers import Output
from services.inference.domain.metrics import WorkerMetrics
from services.inference.domain.result_cache import ResultCache
from services.inference.entrypoints.kafka_worker import InferenceWorker
from services.inference.entrypoints.model_events import DeploymentSync
from services.inference.service_layer.catalogue import DeploymentCatalogue
from services.inference.service_layer.inference import CacheKey, InferenceService
from services.inference.service_layer.model_store import ModelStore
from services.inference.service_layer.ports import RegistryUnavailable
from services.inference.settings import InferenceSettings
from shared.clients.registry import RegistryClient
from shared.runtime.consumer import ConsumerConfig, GroupConsumer
from shared.topics import DEAD_LETTERS, MODEL_EVENTS, PREDICTIONS, REQUESTS


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
    seal_key = settings.callback_seal_key
    processor = RequestsProcessor(
        service,
        metrics,
        requests_topic=settings.topic(REQUESTS.name),
        predictions_topic=settings.topic(PREDICTIONS.name),
        dead_letters_topic=settings.topic(DEAD_LETTERS.name),
        callback_seal_key=seal_key.get_secret_value().encode() if seal_key else None,
    )
    config = consumer_config(settings)
    oversized = OversizedRecords(
        predictions_topic=settings.topic(PREDICTIONS.name),
        dead_letters_topic=settings.topic(DEAD_LETTERS.name),
        limit=config.max_record_bytes,
    )

    def count_retry() -> None:
        metrics.batch_retries += 1

    consumer = GroupConsumer(
        config,
        processor,
        retryable=(RegistryUnavailable,),
        shrink=oversized,
        on_retry=count_retry,
    )
    return InferenceWorker(
        settings,
        service=service,
        source=source,
        events=events,
        deployment_sync=sync,
        metrics=metrics,
        processor=processor,
        consumer=consumer,
    )


def consumer_config(settings: InferenceSettings) -> ConsumerConfig:
    """How a worker consumes `requests`, produces `predictions` and commits."""
    return ConsumerConfig(
        bootstrap=settings.kafka_bootstrap,
        topics=(settings.topic(REQUESTS.name),),
        group_id=settings.consumer_group,
        client_id=f"{settings.kafka_client_id}-inference-{settings.worker_instance}",
        delivery_mode=settings.delivery_mode,
        transactional_id=settings.transactional_id,
        transaction_timeout_ms=settings.transaction_timeout_ms,
        session_timeout_ms=settings.session_timeout_ms,
        batch_timeout_ms=settings.batch_timeout_ms,
        max_batch_records=settings.max_batch_records,
        linger_ms=settings.linger_ms,
        producer_max_batch_bytes=settings.producer_max_batch_bytes,
        client_options=settings.kafka_security.client_options(),
    )
