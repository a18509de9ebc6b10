"""Composition root of drift: settings -> registry, Kafka, state -> the two loops and the API."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from services.drift.adapters.changelog import StateTable
from services.drift.adapters.kafka import JudgeProcess, SketchProcess, TopicNames
from services.drift.adapters.metrics import render_metrics
from services.drift.adapters.references import RegistryReferences, RegistryUnavailable
from services.drift.adapters.state_view import StateView
from services.drift.domain.episodes import EpisodeRules
from services.drift.domain.monitor import VersionMonitors
from services.drift.domain.settings import DataDriftSettings
from services.drift.domain.sketching import MonitorSettings, VersionSketching
from services.drift.entrypoints.api import install_api
from services.drift.service_layer.judge import Judge
from services.drift.service_layer.sketcher import Sketcher
from services.drift.settings import DriftSettings
from shared.clients.authentication import RegistryAuthenticator
from shared.runtime.consumer import ConsumerConfig, GroupConsumer
from shared.runtime.health import HealthServer, create_health_app
from shared.runtime.loops import Loops, start_all_or_nothing
from shared.telemetry import configure_tracing

log = logging.getLogger(__name__)
TRANSIENT = (RegistryUnavailable,)
"""The registry away: the batch is retried until it is back."""


def monitor_settings_of(settings: DriftSettings) -> MonitorSettings:
    """The detectors' design choices, from the operator's few knobs."""
    return MonitorSettings(
        data=DataDriftSettings(
            false_alerts_per_event=settings.false_alarms_per_million / 1e6,
            mean_shift=settings.design_shift_sd,
            window_events=settings.window_events,
        )
    )


class DriftService:
    """The drift service in one process: sketcher, judge, state view, health and API."""

    def __init__(self, settings: DriftSettings) -> None:
        self.settings = settings
        self.topics = TopicNames.with_prefix(settings.topic)
        self.sketch_process: SketchProcess | None = None
        self.judge_process: JudgeProcess | None = None
        self.sketch_consumer: GroupConsumer | None = None
        self.judge_consumer: GroupConsumer | None = None
        self.view = StateView(
            bootstrap=settings.kafka_bootstrap,
            topic=self.topics.state,
            security=settings.kafka_security,
        )
        self._registry_http: httpx.AsyncClient | None = None
        self._auth_http: httpx.AsyncClient | None = None
        self.loops = Loops()
        self._health: HealthServer | None = None
        self._stopped = False
        self.health_port: int | None = None

    async def start(self) -> None:
        await start_all_or_nothing(
            "drift", stopped=self._stopped, start=self._start, stop=self.stop
        )

    async def _start(self) -> None:
        settings = self.settings
        configure_tracing("drift", settings)
        headers = {}
        if settings.registry_api_key is not None:
            headers["Authorization"] = f"Bearer {settings.registry_api_key.get_secret_value()}"
        self._registry_http = httpx.AsyncClient(
            base_url=settings.registry_url,
            timeout=settings.registry_timeout_seconds,
            headers=headers,
        )
        references = RegistryReferences(
            self._registry_http, deployment_ttl_seconds=settings.reference_cache_seconds
        )
        monitor_settings = monitor_settings_of(settings)
        self.sketch_process = SketchProcess(
            Sketcher(references, VersionSketching(monitor_settings)), self.topics
        )
        self.sketch_consumer = GroupConsumer(
            self._config(
                topics=self.topics.streams,
                group=settings.sketch_group,
                role="sketch",
                max_records=settings.sketch_max_records,
                offset_reset=settings.consumer_offset_reset,
            ),
            self.sketch_process,
            retryable=TRANSIENT,
            on_published=self.sketch_process.committed,
        )
        table = StateTable(
            bootstrap=settings.kafka_bootstrap,
            topic=self.topics.state,
            client_options=settings.kafka_security.client_options(),
        )
        judge_consumer: GroupConsumer | None = None

        def generation() -> int:
            return judge_consumer.generation if judge_consumer is not None else 0

        self.judge_process = JudgeProcess(
            Judge(
                VersionMonitors(monitor_settings),
                EpisodeRules(
                    quiet_events=settings.quiet_events, cooldown_seconds=settings.cooldown_seconds
                ),
                now=lambda: datetime.now(UTC),
            ),
            table,
            references,
            self.topics,
            generation,
        )
        judge_consumer = GroupConsumer(
            self._config(
                topics=(self.topics.sketches,),
                group=settings.judge_group,
                role="judge",
                max_records=1000,
                offset_reset="earliest",
            ),
            self.judge_process,
            retryable=TRANSIENT,
            on_published=self.judge_process.committed,
        )
        self.judge_consumer = judge_consumer
        await self.sketch_consumer.start()
        await judge_consumer.start()
        self.loops.run(self.sketch_consumer.run_until_stopped(), name="drift-sketch")
        self.loops.run(judge_consumer.run_until_stopped(), name="drift-judge")
        self.loops.run(self.view.follow(), name="drift-view")
        if settings.drift_health_port is not None:
            await self._serve_http()
        log.info("drift started", extra={"topics": list(self.topics.streams)})

    def _config(
        self, *, topics: tuple[str, ...], group: str, role: str, max_records: int, offset_reset: Any
    ) -> ConsumerConfig:
        settings = self.settings
        return ConsumerConfig(
            bootstrap=settings.kafka_bootstrap,
            topics=topics,
            group_id=group,
            client_id=f"{settings.kafka_client_id}-drift-{role}",
            delivery_mode="exactly-once",
            transactional_id=f"{settings.transactional_id_prefix}{role}-{settings.instance}",
            max_batch_records=max_records,
            offset_reset=offset_reset,
            session_timeout_ms=settings.session_timeout_ms,
            client_options=settings.kafka_security.client_options(),
        )

    async def _serve_http(self) -> None:
        settings = self.settings
        assert settings.drift_health_port is not None
        app = create_health_app(self, service="drift")
        self._auth_http = httpx.AsyncClient(
            base_url=settings.registry_url, timeout=settings.registry_timeout_seconds
        )
        authenticator = RegistryAuthenticator(
            self._auth_http,
            ttl=settings.auth_cache_seconds,
            negative_ttl=min(settings.auth_cache_seconds, 5.0),
        )
        install_api(app, self.view, authenticator)
        health = HealthServer(app, host=settings.drift_health_host, port=settings.drift_health_port)
        await health.start()
        self._health, self.health_port = health, health.port

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        return self.loops.liveness()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        consumers = (self.sketch_consumer, self.judge_consumer)
        if not all(consumer is not None and consumer.started for consumer in consumers):
            return False, {"status": "unready", "reason": "the consumers are not running"}
        if not self.view.caught_up.is_set():
            return False, {"status": "unready", "reason": "the state view is catching up"}
        return True, {"status": "ready"}

    def metrics_text(self) -> str:
        return render_metrics(self)

    async def wait(self) -> None:
        """Return when a loop ends (it only ends by failing); re-raise its error."""
        await self.loops.wait()

    async def stop(self) -> None:
        """Finish the batches at hand, stop the loops, close the clients. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        for consumer in (self.sketch_consumer, self.judge_consumer):
            if consumer is not None:
                consumer.request_stop()
        await self.loops.finish(["drift-sketch", "drift-judge"], grace_seconds=10.0)
        await self.loops.cancel()
        if self._health is not None:
            await self._health.stop()
        for consumer in (self.sketch_consumer, self.judge_consumer):
            if consumer is not None:
                await consumer.stop()
        for http in (self._registry_http, self._auth_http):
            if http is not None:
                await http.aclose()
