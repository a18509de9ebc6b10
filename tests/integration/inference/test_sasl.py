"""The serving path over an authenticated Kafka listener (SASL_PLAINTEXT, SCRAM-SHA-256)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError

from devtools.kafka_broker import KafkaBroker
from devtools.sample_models import iris_classifier
from shared.contracts import PredictionRequest
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import decode
from shared.kafka.publisher import Publisher
from shared.kafka.security import KafkaSecurity
from shared.settings import ModelbusSettings
from shared.topics import PREDICTIONS, REQUESTS
from tests.integration.inference.conftest import Stack

pytestmark = [pytest.mark.kafka]


def sasl_settings(broker: KafkaBroker, *, password: str | None = None) -> dict[str, str]:
    assert broker.sasl_bootstrap is not None, "the project's own test broker has a SASL listener"
    return {
        "kafka_bootstrap": broker.sasl_bootstrap,
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-256",
        "kafka_sasl_username": broker.sasl_username,
        "kafka_sasl_password": password or broker.sasl_password,
    }


async def test_requests_are_served_to_predictions_over_sasl_scram(
    stack: Stack,
    kafka_broker: KafkaBroker,
    iris_request: Callable[..., PredictionRequest],
) -> None:
    stack.registry.deploy("iris", [iris_classifier()])
    settings = sasl_settings(kafka_broker)
    security = ModelbusSettings(**settings).kafka_security  # type: ignore[arg-type]
    bootstrap = settings["kafka_bootstrap"]
    await ensure_topics(bootstrap, prefix=stack.prefix, specs=[REQUESTS], security=security)
    producer = Publisher(bootstrap, source="tests", topic_prefix=stack.prefix, security=security)
    predictions = AIOKafkaConsumer(
        stack.topic(PREDICTIONS.name),
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        **security.client_options(),
    )
    async with stack.worker(**settings):
        await producer.start()
        await predictions.start()
        try:
            sent = [iris_request(f"sasl-{i}") for i in range(5)]
            for request in sent:
                await producer.publish(REQUESTS, request, key=request.partition_key)
            answers: dict[str, str] = {}
            while len(answers) < len(sent):
                batches = await predictions.getmany(timeout_ms=20_000)
                assert batches, f"only {len(answers)} of {len(sent)} answers arrived"
                for record in (r for batch in batches.values() for r in batch):
                    answer = decode(PREDICTIONS, record.value, record.headers)
                    answers[answer.request_id] = answer.status
        finally:
            await predictions.stop()
            await producer.stop()

    assert answers == {request.request_id: "ok" for request in sent}


async def test_a_wrong_password_is_refused_by_the_sasl_listener(kafka_broker: KafkaBroker) -> None:
    settings = sasl_settings(kafka_broker, password="not-the-password")
    wrong = KafkaSecurity(
        protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username=settings["kafka_sasl_username"],
        sasl_password=settings["kafka_sasl_password"],
    )
    publisher = Publisher(settings["kafka_bootstrap"], source="tests", security=wrong)
    with pytest.raises(KafkaConnectionError):
        await publisher.start()
    await publisher.stop()
