"""A delivery service in-process against the real broker, with its own topics per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from devtools.kafka_broker import KafkaBroker
from services.delivery.adapters.signing import new_webhook_secret
from services.delivery.bootstrap import build_service
from services.delivery.settings import DeliverySettings
from shared.kafka.admin import ensure_topics
from shared.kafka.publisher import Publisher
from shared.topics import DEAD_LETTERS, PREDICTIONS
from tests.integration.delivery.support import CALLBACK_SEAL_KEY, DeliveryHarness


@pytest.fixture
def webhook_secret() -> str:
    return new_webhook_secret()


@pytest.fixture
async def delivery_factory(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path, webhook_secret: str
) -> AsyncIterator[Callable[..., Any]]:
    """`async with delivery_factory(**settings) as harness:` runs a delivery service."""
    await ensure_topics(
        kafka_broker.bootstrap,
        prefix=topic_prefix,
        specs=[PREDICTIONS, DEAD_LETTERS],
        partitions_override=2,
    )
    publisher = Publisher(kafka_broker.bootstrap, source="inference", topic_prefix=topic_prefix)
    await publisher.start()

    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[DeliveryHarness]:
        values: dict[str, Any] = {
            "kafka_bootstrap": kafka_broker.bootstrap,
            "topic_prefix": topic_prefix,
            "jobs_database_url": f"sqlite:///{tmp_path / 'jobs.db'}",
            "webhook_secret": webhook_secret,
            "callback_seal_key": CALLBACK_SEAL_KEY,
            "consumer_group": f"{topic_prefix}delivery",
            "backoff_base_seconds": 0.05,
            "backoff_max_seconds": 0.2,
            "request_timeout_seconds": 5.0,
            "connect_timeout_seconds": 2.0,
            "lease_seconds": 15.0,
            "poll_interval_seconds": 0.1,
            "delivery_health_port": None,
            "_env_file": None,
        } | overrides
        settings = DeliverySettings(**values)
        service = build_service(settings)
        await service.start()
        try:
            yield DeliveryHarness(
                settings=settings,
                service=service,
                secret=webhook_secret,
                bootstrap=kafka_broker.bootstrap,
                publisher=publisher,
            )
        finally:
            await service.stop()

    try:
        yield running
    finally:
        await publisher.stop()
