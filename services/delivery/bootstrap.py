"""Composition root of delivery: settings -> store, Kafka, HTTP sender -> running loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from services.delivery.adapters.http_sender import WebhookSender
from services.delivery.adapters.kafka import (
    KafkaDeadLetters,
    RecordPredictionsProcess,
    predictions_consumer_config,
)
from services.delivery.adapters.metrics import DeliveryMetrics
from services.delivery.adapters.resolver import Resolver, SystemResolver
from services.delivery.adapters.signing import WebhookSigner
from services.delivery.adapters.subscriber_secrets import CachedSubscriberSecrets
from services.delivery.domain.backoff import Backoff
from services.delivery.service_layer.delivery import WebhookDelivery
from services.delivery.service_layer.dispatcher import DeliveryDispatcher
from services.delivery.service_layer.ingest import RecordPredictions
from services.delivery.service_layer.outcomes import OutcomeRecorder
from services.delivery.settings import DeliverySettings
from shared.db import make_engine
from shared.jobstore.store import JobStore, migrate
from shared.jobstore.webhook_secrets import WebhookSecretStore
from shared.kafka.publisher import Publisher
from shared.runtime.consumer import GroupConsumer
from shared.runtime.health import HealthServer, create_health_app
from shared.runtime.loops import Loops, start_all_or_nothing
from shared.store_thread import StoreThread
from shared.telemetry import configure_tracing
from shared.topics import PREDICTIONS

log = logging.getLogger(__name__)
CONSUMER_STOP_GRACE_SECONDS = 5.0


class DeliveryService:
    """The delivery service in one process: consumer, delivery loop, health endpoint.

    Everything is built here but nothing touches the network or the database before
    `start()`; `stop()` ends the loops, lets attempts under way finish, and closes clients.
    """

    def __init__(
        self,
        settings: DeliverySettings,
        *,
        resolver: Resolver | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = make_engine(settings.jobs_database_url)
        self.store = JobStore(self.engine)
        self.store_thread = StoreThread()
        self.outcomes = OutcomeRecorder(self.store, self.store_thread.run)
        self.subscriber_secrets = CachedSubscriberSecrets(
            WebhookSecretStore(self.engine),
            ttl_seconds=settings.webhook_secret_cache_seconds,
            run=self.store_thread.run,
        )
        self.metrics = DeliveryMetrics()
        self.sender = WebhookSender(
            request_timeout_seconds=settings.request_timeout_seconds,
            connect_timeout_seconds=settings.connect_timeout_seconds,
            max_connections=settings.max_concurrency,
        )
        self._resolver = resolver or SystemResolver(
            timeout_seconds=settings.connect_timeout_seconds
        )
        self._random = random
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._publisher: Publisher | None = None
        self.consumer: GroupConsumer | None = None
        self.dispatcher: DeliveryDispatcher | None = None
        self.loops = Loops()
        self._health: HealthServer | None = None
        self._stopped = False
        self.health_port: int | None = None
        """The port /healthz, /readyz and /metrics listen on once started (if any)."""

    async def start(self) -> None:
        """Migrate the store, connect to Kafka, start the loops; all or nothing."""
        await start_all_or_nothing(
            "delivery", stopped=self._stopped, start=self._start, stop=self.stop
        )

    async def _start(self) -> None:
        settings = self.settings
        configure_tracing("delivery", settings)
        await asyncio.to_thread(migrate, settings.jobs_database_url)
        publisher = Publisher.for_service(settings, source="delivery")
        self._publisher = publisher
        await publisher.start()
        dead_letters = KafkaDeadLetters(publisher)
        delivery = WebhookDelivery(
            store=self.store,
            sender=self.sender,
            resolver=self._resolver,
            signer=WebhookSigner(settings.webhook_secret.get_secret_value()),
            subscriber_secrets=self.subscriber_secrets,
            allowlist=settings.allowlist,
            backoff=Backoff(settings.backoff_base_seconds, settings.backoff_max_seconds),
            max_attempts=settings.max_attempts,
            lease=self._lease,
            dead_letters=dead_letters,
            source_topic=settings.topic(PREDICTIONS.name),
            metrics=self.metrics,
            outcomes=self.outcomes,
            run=self.store_thread.run,
            random=self._random,
        )
        dispatcher = DeliveryDispatcher(
            delivery,
            self.store,
            max_concurrency=settings.max_concurrency,
            poll_interval_seconds=settings.poll_interval_seconds,
            lease=self._lease,
            run=self.store_thread.run,
        )
        record_predictions = RecordPredictions(
            self.store,
            dead_letters,
            self.metrics,
            on_due=dispatcher.wake,
            claimed=dispatcher,
            lease=self._lease,
            run=self.store_thread.run,
            callback_seal_key=(
                settings.callback_seal_key.get_secret_value().encode()
                if settings.callback_seal_key is not None
                else None
            ),
        )
        consumer = GroupConsumer(
            predictions_consumer_config(settings),
            RecordPredictionsProcess(record_predictions),
            # The store or the broker being away passes: the batch is retried until then.
            retryable=(Exception,),
        )
        self.dispatcher, self.consumer = dispatcher, consumer
        await consumer.start()
        self.loops.run(consumer.run_until_stopped(), name="delivery-consumer")
        self.loops.run(dispatcher.run(), name="delivery-dispatcher")
        if settings.delivery_health_port is not None:
            health = HealthServer(
                create_health_app(self, service="delivery"),
                host=settings.delivery_health_host,
                port=settings.delivery_health_port,
            )
            await health.start()
            self._health, self.health_port = health, health.port
        log.info(
            "delivery started",
            extra={"topic": settings.topic(PREDICTIONS.name), "group": settings.consumer_group},
        )

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """Both loops run; a dead loop means the process should be restarted."""
        return self.loops.liveness()

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """The job store answers and the consumer has joined Kafka."""

        def ping() -> None:
            with Session(self.engine) as session:
                session.exec(text("SELECT 1"))  # type: ignore[call-overload]

        try:
            await asyncio.to_thread(ping)
            if self.consumer is None or not self.consumer.started:
                raise RuntimeError("the predictions consumer is not running")
        except Exception as error:
            return False, {"status": "unready", "reason": f"{type(error).__name__}: {error}"}
        in_flight = self.dispatcher.in_flight if self.dispatcher else 0
        return True, {"status": "ready", "in_flight": in_flight}

    async def metrics_text(self) -> str:
        try:
            backlog: int | None = await asyncio.to_thread(self.store.delivery_backlog)
        except Exception:
            log.exception("could not count the delivery backlog")
            backlog = None
        return self.metrics.render(
            backlog=backlog,
            connect_attempts=self.sender.network.connect_attempts,
            refused_connections=self.sender.network.refused,
        )

    async def wait(self) -> None:
        """Return when a loop ends (it only ends by failing); re-raise its error."""
        await self.loops.wait()

    async def stop(self) -> None:
        """Stop consuming, finish attempts under way (up to the request timeout), close.

        Safe to call twice, and after a failed start.
        """
        if self._stopped:
            return
        self._stopped = True
        if self.consumer is not None:
            self.consumer.request_stop()
        await self.loops.finish(["delivery-consumer"], grace_seconds=CONSUMER_STOP_GRACE_SECONDS)
        if self.dispatcher is not None:
            await self.dispatcher.stop(grace_seconds=self.settings.request_timeout_seconds)
        await self.outcomes.aclose()
        await self.loops.cancel()
        if self._health is not None:
            await self._health.stop()
        if self.consumer is not None:
            await self.consumer.stop()
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None
        await self.sender.aclose()
        await asyncio.to_thread(self.store_thread.close)
        self.engine.dispose()
        log.info("delivery stopped")


def build_service(
    settings: DeliverySettings | None = None,
    *,
    resolver: Resolver | None = None,
    random: Callable[[], float] | None = None,
) -> DeliveryService:
    """The delivery service, wired from settings (read from the environment if not given).

    `resolver` and `random` are the seams tests may replace: name resolution and the
    jitter source of the backoff.
    """
    return DeliveryService(settings or DeliverySettings(), resolver=resolver, random=random)
