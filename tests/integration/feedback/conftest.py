"""A feedback service in-process against the real broker and a real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from devtools.kafka_broker import KafkaBroker
from devtools.live_registry import LiveRegistry, live_registry
from services.feedback.bootstrap import FeedbackService
from services.feedback.settings import FeedbackSettings
from shared.kafka.admin import ensure_topics
from shared.kafka.publisher import Publisher
from shared.topics import DEAD_LETTERS, FEEDBACK, LABELS, LIVE_QUALITY, PREDICTIONS, REQUESTS
from tests.integration.feedback.support import FeedbackHarness

JOIN_TOPICS = [REQUESTS, PREDICTIONS, FEEDBACK, LABELS, DEAD_LETTERS, LIVE_QUALITY]


@pytest.fixture(scope="module")
def registry(
    kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveRegistry]:
    """A registry that knows a key of each role, for the service's HTTP API."""
    with live_registry(
        data_dir=tmp_path_factory.mktemp("feedback-registry"),
        kafka_bootstrap=kafka_broker.bootstrap,
        topic_prefix=f"r{uuid.uuid4().hex[:8]}-",
    ) as running:
        yield running


@pytest.fixture
async def feedback_factory(
    kafka_broker: KafkaBroker, topic_prefix: str, database_url: str
) -> AsyncIterator[Callable[..., Any]]:
    """`async with feedback_factory(**settings) as harness:` runs a feedback service."""
    await ensure_topics(
        kafka_broker.bootstrap, prefix=topic_prefix, specs=JOIN_TOPICS, partitions_override=3
    )
    publisher = Publisher(kafka_broker.bootstrap, source="test", topic_prefix=topic_prefix)
    await publisher.start()

    @asynccontextmanager
    async def running(
        registry: LiveRegistry | None = None, **overrides: Any
    ) -> AsyncIterator[FeedbackHarness]:
        """With a `registry`, the HTTP API runs on a free port and reads keys from it."""
        api: dict[str, Any] = (
            {
                "registry_url": registry.url,
                "registry_api_key": registry.keys["reader"],
                "feedback_health_port": 0,
            }
            if registry is not None
            else {}
        )
        values: dict[str, Any] = (
            {
                "kafka_bootstrap": kafka_broker.bootstrap,
                "topic_prefix": topic_prefix,
                "feedback_database_url": database_url,
                "consumer_group": f"{topic_prefix}feedback",
                "registry_url": None,
                "feedback_health_port": None,
                "sweep_interval_seconds": 0.2,
                "_env_file": None,
            }
            | api
            | overrides
        )
        settings = FeedbackSettings(**values)
        service = FeedbackService(settings)
        await service.start()
        try:
            yield FeedbackHarness(
                settings=settings,
                service=service,
                publisher=publisher,
                bootstrap=kafka_broker.bootstrap,
            )
        finally:
            await service.stop()

    try:
        yield running
    finally:
        await publisher.stop()
