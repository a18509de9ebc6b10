"""A typed, durable Kafka publisher: contract in, acknowledged record out."""

from __future__ import annotations

from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from opentelemetry import trace

from shared.contracts import WireModel
from shared.kafka.codec import encode
from shared.kafka.security import PLAINTEXT, KafkaSecurity
from shared.settings import ModelbusSettings
from shared.topics import TopicSpec

T = TypeVar("T", bound=WireModel)
tracer = trace.get_tracer("modelbus.kafka")


class Publisher:
    """Publishes contract messages with acks=all and idempotence, one span per record."""

    def __init__(
        self,
        bootstrap: str,
        *,
        source: str,
        topic_prefix: str = "",
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self._source = f"/modelbus/{source}"
        self._prefix = topic_prefix
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=f"modelbus-{source}",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            **security.client_options(),
        )

    @classmethod
    def for_service(cls, settings: ModelbusSettings, *, source: str) -> Publisher:
        """The publisher a service builds from its settings: its cluster, its topic prefix,
        its security."""
        return cls(
            settings.kafka_bootstrap,
            source=source,
            topic_prefix=settings.topic_prefix,
            security=settings.kafka_security,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, spec: TopicSpec[T], message: T, *, key: str | None) -> Any:
        """Send and wait for the broker's acknowledgement; returns aiokafka's RecordMetadata."""
        topic = self._prefix + spec.name
        with tracer.start_as_current_span(
            f"{topic} publish",
            kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
        ):
            record = encode(spec, message, key=key, source=self._source, topic=topic)
            return await self._producer.send_and_wait(
                record.topic, record.value, key=record.key, headers=record.headers
            )
