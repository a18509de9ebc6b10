"""A drift service in-process against the real broker and a live registry."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from devtools.kafka_broker import KafkaBroker
from devtools.live_registry import LiveRegistry, live_registry
from devtools.sample_models import gaussian_classifier
from services.drift.bootstrap import DriftService
from services.drift.settings import DriftSettings
from shared.kafka.admin import ensure_topics
from shared.kafka.publisher import Publisher
from shared.topics import (
    DRIFT_ALERTS,
    DRIFT_SKETCHES,
    DRIFT_STATE,
    LABELS,
    MODEL_EVENTS,
    PREDICTIONS,
    REQUESTS,
    TopicSpec,
)
from tests.integration.drift.support import DriftHarness

DRIFT_TOPICS: list[TopicSpec[Any]] = [
    REQUESTS,
    PREDICTIONS,
    LABELS,
    DRIFT_SKETCHES,
    DRIFT_STATE,
    DRIFT_ALERTS,
]
MODEL = "sensor"
FEATURES = 6


@pytest.fixture(scope="module")
def registry(
    kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveRegistry]:
    """A registry with `sensor` version 1 (six standard normal features) in production."""
    prefix = f"r{uuid.uuid4().hex[:8]}-"
    asyncio.run(ensure_topics(kafka_broker.bootstrap, prefix=prefix, specs=[MODEL_EVENTS]))
    with live_registry(
        data_dir=tmp_path_factory.mktemp("drift-registry"),
        kafka_bootstrap=kafka_broker.bootstrap,
        topic_prefix=prefix,
    ) as running:
        running.deploy(MODEL, [gaussian_classifier(features=FEATURES)])
        yield running


def drift_settings(
    kafka_broker: KafkaBroker, topic_prefix: str, registry: LiveRegistry, **overrides: Any
) -> dict[str, Any]:
    return {
        "kafka_bootstrap": kafka_broker.bootstrap,
        "topic_prefix": topic_prefix,
        "registry_url": registry.url,
        "registry_api_key": registry.keys["reader"],
        "sketch_group": f"{topic_prefix}drift-sketch",
        "judge_group": f"{topic_prefix}drift-judge",
        "consumer_offset_reset": "earliest",
        "instance_id": f"{topic_prefix}drift",
        "drift_health_port": 0,
        "session_timeout_ms": 6000,
        # At the default rate (0.5 false alerts per million feature-events) one clean test
        # stream of ~50,000 feature-events would alert in about 2% of runs; tests run at a
        # fiftieth of that so they check the service, not their luck.
        "false_alarms_per_million": 0.01,
        "_env_file": None,
    } | overrides


@pytest.fixture
async def drift_factory(
    kafka_broker: KafkaBroker, topic_prefix: str, registry: LiveRegistry
) -> AsyncIterator[Callable[..., Any]]:
    """`async with drift_factory(**settings) as harness:` runs a drift service."""
    await ensure_topics(
        kafka_broker.bootstrap, prefix=topic_prefix, specs=DRIFT_TOPICS, partitions_override=3
    )
    publisher = Publisher(kafka_broker.bootstrap, source="test", topic_prefix=topic_prefix)
    await publisher.start()

    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[DriftHarness]:
        settings = DriftSettings(
            **drift_settings(kafka_broker, topic_prefix, registry, **overrides)
        )
        service = DriftService(settings)
        await service.start()
        try:
            yield DriftHarness(
                settings=settings,
                service=service,
                publisher=publisher,
                bootstrap=kafka_broker.bootstrap,
                registry=registry,
            )
        finally:
            await service.stop()

    try:
        yield running
    finally:
        await publisher.stop()
