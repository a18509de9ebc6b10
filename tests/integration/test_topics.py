"""Topics exist with explicit partitions and retention; every contract crosses the real broker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from devtools.kafka_broker import KafkaBroker
from shared.contracts import (
    ClassifierOutput,
    DeadLetter,
    DeploymentState,
    DriftAlert,
    DriftSketch,
    DriftStateRecord,
    DriftWindow,
    Feedback,
    LabelledExample,
    LiveQuality,
    ModelEvent,
    Prediction,
    PredictionRequest,
    SketchSource,
)
from shared.kafka.admin import ensure_topics
from shared.kafka.codec import decode
from shared.kafka.headers import parse_headers
from shared.kafka.publisher import Publisher
from shared.topics import ALL_TOPICS, TopicSpec, topic_by_name

pytestmark = [pytest.mark.kafka]

SAMPLES: dict[str, tuple[Any, str]] = {
    "requests": (
        PredictionRequest(
            request_id="r-1",
            model="iris",
            inputs={"petal_width": 0.2},
            callback={"url": "https://example.org/hook"},
            routing_key="customer-9",  # type: ignore[arg-type]
        ),
        "customer-9",
    ),
    "predictions": (
        Prediction(
            request_id="r-1",
            model="iris",
            version=3,
            variant="canary",
            status="ok",
            output=ClassifierOutput(label="setosa", probabilities={"setosa": 0.97}),
            latency_ms=4.2,
            routing_key="customer-9",
        ),
        "customer-9",
    ),
    "feedback": (Feedback(request_id="r-1", label="setosa", source="analyst"), "r-1"),
    "drift-alerts": (
        DriftAlert(
            model="iris",
            version=3,
            kind="data",
            feature="petal_width",
            method="psi",
            statistic=0.4,
            threshold=0.2,
            severity="critical",
            window=DriftWindow(size=1000),
            evidence={"psi": 0.4},
        ),
        "iris",
    ),
    "model-events": (
        ModelEvent(
            event_type="deployment.changed",
            model="iris",
            version=3,
            actor="ci",
            deployment=DeploymentState(production=2, canary=3, canary_weight=0.1),
        ),
        "iris",
    ),
    "labels": (
        LabelledExample(
            label_id="r-1:production:f-1",
            request_id="r-1",
            model="iris",
            version=3,
            variant="production",
            inputs={"petal_width": 0.2},
            predicted="setosa",
            label="versicolor",
            correct=False,
            strength="label",
            source="review",
            authority="reviewer",
            feedback_id="f-1",
            predicted_at=datetime(2026, 1, 1, tzinfo=UTC),
            labelled_at=datetime(2026, 1, 2, tzinfo=UTC),
        ),
        "r-1",
    ),
    "live-quality": (
        LiveQuality(
            model="iris",
            version=3,
            variant="shadow",
            window_seconds=86400,
            predictions=10,
            labelled=4,
            coverage=0.4,
            accuracy=0.75,
            conflicts=0,
        ),
        "iris",
    ),
    "drift-sketches": (
        DriftSketch(
            sketch_id="requests:0:7-9:iris:3",
            model="iris",
            version=3,
            stream="requests",
            source=SketchSource(topic="requests", partition=0, first_offset=7, last_offset=9),
            events=3,
            first_at=datetime(2026, 1, 1, tzinfo=UTC),
            last_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
            body={"numeric": {}},
        ),
        "iris",
    ),
    "drift-state": (
        DriftStateRecord(
            model="iris", version=3, state={}, written_at=datetime(2026, 1, 1, tzinfo=UTC)
        ),
        "iris/3",
    ),
    "dead-letters": (
        DeadLetter(
            source_topic="requests",
            partition=0,
            offset=7,
            value="AAE=",
            error_code="malformed_json",
            error_message="value is not valid JSON",
            service="inference",
        ),
        "r-1",
    ),
}


def test_every_topic_has_a_sample() -> None:
    assert set(SAMPLES) == {spec.name for spec in ALL_TOPICS}


async def test_topics_are_created_with_partitions_and_retention(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    created = await ensure_topics(kafka_broker.bootstrap, prefix=topic_prefix)
    assert {outcome.action for outcome in created} == {"created"}
    again = await ensure_topics(kafka_broker.bootstrap, prefix=topic_prefix)
    assert {outcome.action for outcome in again} == {"unchanged"}

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic_prefix + spec.name for spec in ALL_TOPICS])
        partitions = {topic["topic"]: len(topic["partitions"]) for topic in described}
        for spec in ALL_TOPICS:
            assert partitions[topic_prefix + spec.name] == spec.partitions
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, topic_prefix + spec.name)
            for spec in ALL_TOPICS
        ]
        responses = await admin.describe_configs(resources)
        retention = {}
        for response in responses:
            for resource in response.resources:
                name, configs = resource[3], resource[4]
                values = {entry[0]: entry[1] for entry in configs}
                retention[name] = int(values["retention.ms"])
        for spec in ALL_TOPICS:
            assert retention[topic_prefix + spec.name] == spec.retention_ms
    finally:
        await admin.close()

    grown = await ensure_topics(
        kafka_broker.bootstrap,
        prefix=topic_prefix,
        specs=[topic_by_name("drift-alerts")],
        partitions_override=3,
    )
    assert [(o.action, o.partitions) for o in grown] == [("grown", 3)]


@pytest.mark.parametrize("topic", sorted(SAMPLES))
async def test_contract_round_trip_on_the_broker(
    kafka_broker: KafkaBroker, topic_prefix: str, topic: str
) -> None:
    spec: TopicSpec[Any] = topic_by_name(topic)
    await ensure_topics(kafka_broker.bootstrap, prefix=topic_prefix, specs=[spec])
    message, key = SAMPLES[topic]
    publisher = Publisher(kafka_broker.bootstrap, source="tests", topic_prefix=topic_prefix)
    await publisher.start()
    try:
        await publisher.publish(spec, message, key=key)
    finally:
        await publisher.stop()

    consumer = AIOKafkaConsumer(
        topic_prefix + topic,
        bootstrap_servers=kafka_broker.bootstrap,
        group_id=f"{topic_prefix}reader",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.key == key.encode()
    assert decode(spec, record.value, record.headers) == message
    metadata = parse_headers(record.headers)
    assert metadata.event_type == spec.event_type
    assert metadata.source == "/modelbus/tests"
    assert metadata.traceparent is not None
    assert dict(record.headers)["ce_specversion"] == b"1.0"
