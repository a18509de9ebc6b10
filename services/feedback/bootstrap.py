"""Composition root of feedback: settings -> store, registry, Kafka -> running loops."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from services.feedback.adapters.kafka import (
    JoinProcess,
    TopicNames,
    feedback_dead_letter,
    shrink_output,
)
from services.feedback.adapters.metrics import JoinMetrics, new_text, render_quality
from services.feedback.adapters.policies import RegistryPolicies, RegistryUnavailable
from services.feedback.adapters.store import (
    FeedbackStore,
    make_reader_engine,
    make_store_engine,
    migrate,
)
from services.feedback.domain.quality import VariantQuality
from services.feedback.entrypoints.api import ApiContext, install_api
from services.feedback.service_layer.batch import DefaultPolicies, PolicySource
from services.feedback.service_layer.join import Joiner, JoinResult
from services.feedback.service_layer.quality import LiveQualityMeter, as_message
from services.feedback.service_layer.sweeper import DAY_SECONDS, Sweeper, SweepPolicy
from services.feedback.settings import FeedbackSettings
from shared.clients.authentication import RegistryAuthenticator
from shared.contracts import Feedback
from shared.kafka.publisher import Publisher
from shared.runtime.consumer import ConsumerConfig, GroupConsumer
from shared.runtime.health import HealthServer, create_health_app
from shared.runtime.loops import Loops, start_all_or_nothing
from shared.store_thread import StoreThread
from shared.telemetry import configure_tracing
from shared.topics import DEAD_LETTERS, LIVE_QUALITY

log = logging.getLogger(__name__)
TRANSIENT = (OperationalError, RegistryUnavailable)
"""Failures of a dependency that is away: the batch is retried until it is back."""


class FeedbackService:
    """The feedback service in one process: the join, the sweeper, health and metrics."""

    def __init__(self, settings: FeedbackSettings) -> None:
        self.settings = settings
        self.engine = make_store_engine(settings.feedback_database_url)
        self.store = FeedbackStore(self.engine)
        self.reader = make_reader_engine(settings.feedback_database_url)
        self.store_thread = StoreThread("feedback-store")
        self.metrics = JoinMetrics()
        self.meter = LiveQualityMeter(self.reader, clock=time.time)
        self.latest_quality: list[VariantQuality] = []
        self._auth_http: httpx.AsyncClient | None = None
        self.policies: PolicySource = DefaultPolicies()
        self.topics = TopicNames(settings.topic)
        self._registry_http: httpx.Client | None = None
        self._publisher: Publisher | None = None
        self.consumer: GroupConsumer | None = None
        self.loops = Loops()
        self._health: HealthServer | None = None
        self._stopped = False
        self.health_port: int | None = None

    def _policies(self) -> PolicySource:
        settings = self.settings
        if settings.registry_url is None or settings.registry_api_key is None:
            log.warning("no registry configured: every model gets the default feedback policy")
            return DefaultPolicies()
        self._registry_http = httpx.Client(
            base_url=settings.registry_url,
            timeout=settings.registry_timeout_seconds,
            headers={"Authorization": f"Bearer {settings.registry_api_key.get_secret_value()}"},
        )
        return RegistryPolicies(self._registry_http, ttl_seconds=settings.policy_cache_seconds)

    async def start(self) -> None:
        await start_all_or_nothing(
            "feedback", stopped=self._stopped, start=self._start, stop=self.stop
        )

    async def _start(self) -> None:
        settings = self.settings
        configure_tracing("feedback", settings)
        await asyncio.to_thread(migrate, settings.feedback_database_url)
        publisher = Publisher.for_service(settings, source="feedback")
        self._publisher = publisher
        await publisher.start()
        self.policies = self._policies()
        joiner = Joiner(self.store, self.policies)
        consumer = GroupConsumer(
            ConsumerConfig(
                bootstrap=settings.kafka_bootstrap,
                topics=self.topics.consumed,
                group_id=settings.consumer_group,
                client_id=f"{settings.kafka_client_id}-feedback",
                max_batch_records=settings.consume_max_records,
                offset_reset=settings.consumer_offset_reset,
                session_timeout_ms=settings.session_timeout_ms,
                client_options=settings.kafka_security.client_options(),
            ),
            JoinProcess(joiner, self.topics, run=self.store_thread.run, on_result=self._count),
            retryable=TRANSIENT,
            shrink=shrink_output,
        )
        sweeper = Sweeper(
            self.store,
            SweepPolicy(
                match_wait_seconds=settings.match_wait_seconds,
                retention_seconds=settings.retention_days * DAY_SECONDS,
            ),
            publish_unmatched=self._publish_unmatched,
            run=self.store_thread.run,
            clock=time.time,
        )
        self.consumer = consumer
        await consumer.start()
        self.loops.run(consumer.run_until_stopped(), name="feedback-join")
        self.loops.run(self._sweep_forever(sweeper), name="feedback-sweeper")
        self.loops.run(self._publish_quality(), name="feedback-quality")
        if settings.feedback_health_port is not None:
            app = create_health_app(self, service="feedback")
            if self._registry_http is not None:
                install_api(app, self._api_context(publisher))
            health = HealthServer(
                app, host=settings.feedback_health_host, port=settings.feedback_health_port
            )
            await health.start()
            self._health, self.health_port = health, health.port
        log.info("feedback started", extra={"topics": list(self.topics.consumed)})

    def _api_context(self, publisher: Publisher) -> ApiContext:
        settings = self.settings
        assert settings.registry_url is not None and settings.registry_api_key is not None
        self._auth_http = httpx.AsyncClient(
            base_url=settings.registry_url, timeout=settings.registry_timeout_seconds
        )
        return ApiContext(
            store=self.store,
            reader=self.reader,
            meter=self.meter,
            authenticator=RegistryAuthenticator(
                self._auth_http,
                ttl=settings.auth_cache_seconds,
                negative_ttl=min(settings.auth_cache_seconds, 5.0),
            ),
            publisher=publisher,
            run=self.store_thread.run,
            read=asyncio.to_thread,
            default_window_seconds=settings.quality_window_seconds,
            lease_seconds=settings.review_lease_seconds,
            registry_url=settings.registry_url,
            policies=self.policies,
        )

    async def _publish_quality(self) -> None:
        """Measure live quality at an interval, publish it and keep it for /metrics."""
        window = self.settings.quality_window_seconds
        while True:
            await asyncio.sleep(self.settings.quality_publish_seconds)
            try:
                figures = await asyncio.to_thread(self.meter.measure, window)
                self.latest_quality = figures
                assert self._publisher is not None
                for quality in figures:
                    await self._publisher.publish(
                        LIVE_QUALITY, as_message(quality, window), key=quality.model
                    )
            except Exception:  # the store or Kafka away: measured again next time
                log.exception("measuring or publishing live quality failed")

    def _count(self, result: JoinResult, records: int) -> None:
        metrics = self.metrics
        metrics.records_read += records
        metrics.feedback_joined += result.joined
        metrics.feedback_refused += len(result.refused)
        metrics.labels_published += len(result.labels)

    async def _publish_unmatched(self, feedback: Feedback, reason: str) -> None:
        assert self._publisher is not None
        letter = feedback_dead_letter(
            feedback, topic=self.topics.feedback, code="unmatched", message=reason
        )
        await self._publisher.publish(DEAD_LETTERS, letter, key=letter.key)
        self.metrics.feedback_unmatched += 1

    async def _sweep_forever(self, sweeper: Sweeper) -> None:
        interval = self.settings.sweep_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await sweeper.sweep()
            except Exception:  # the store or Kafka away: the next sweep tries again
                log.exception("a sweep failed; trying again in %g s", interval)

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        return self.loops.liveness()

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        def ping() -> None:
            with self.reader.connect() as connection:
                connection.execute(sa.text("SELECT 1"))

        try:
            await asyncio.to_thread(ping)
            if self.consumer is None or not self.consumer.started:
                raise RuntimeError("the join's consumer is not running")
        except Exception as error:
            return False, {"status": "unready", "reason": f"{type(error).__name__}: {error}"}
        return True, {"status": "ready"}

    async def metrics_text(self) -> str:
        out = new_text()
        self.metrics.render(out)
        render_quality(out, self.latest_quality)
        return out.text()

    async def wait(self) -> None:
        """Return when a loop ends (it only ends by failing); re-raise its error."""
        await self.loops.wait()

    async def stop(self) -> None:
        """Finish the batch at hand, stop the loops, close the clients. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.consumer is not None:
            self.consumer.request_stop()
        await self.loops.finish(["feedback-join"], grace_seconds=10.0)
        await self.loops.cancel()
        if self._health is not None:
            await self._health.stop()
        if self.consumer is not None:
            await self.consumer.stop()
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None
        await asyncio.to_thread(self.store_thread.close)
        if self._registry_http is not None:
            self._registry_http.close()
        if self._auth_http is not None:
            await self._auth_http.aclose()
        self.engine.dispose()
        self.reader.dispose()
        log.info("feedback stopped")
