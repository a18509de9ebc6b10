"""The demo's drift act: traffic like the training data, then one feature drifts; the
drift service's alert is awaited and shown with its delay and its evidence."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.cli.output import say
from shared.contracts import DriftAlert, PredictionRequest
from shared.kafka.codec import UndecodableMessage, decode, encode
from shared.settings import ModelbusSettings
from shared.topics import DRIFT_ALERTS, REQUESTS

DRIFTING = "petal_width"
SHIFT_CM = 0.6
"""About 0.8 of the feature's standard deviation in the training data."""


async def show_drift(
    settings: ModelbusSettings,
    *,
    model: str,
    version: int,
    features: list[str],
    training: np.ndarray,
    drift_url: str,
    steady: int = 600,
    drifted: int = 2400,
    wait_seconds: float = 90.0,
) -> None:
    """Send `steady` requests drawn from the training rows, then `drifted` with
    petal_width shifted; wait for the drift alert and print it."""
    rng = np.random.default_rng(11)
    column = features.index(DRIFTING)
    rows = training[rng.integers(len(training), size=steady + drifted)].copy()
    rows[steady:, column] += SHIFT_CM
    start = datetime.now(UTC)
    times = [start + timedelta(milliseconds=index) for index in range(len(rows))]
    alerts = asyncio.create_task(_first_alert(settings, model, version, wait_seconds))
    await asyncio.sleep(1.0)  # the alert reader is at the topic's end before anything is sent
    sent_at = time.time()
    await _publish(settings, model, features, rows, times)
    say(
        f"\n11. drift: {steady} requests like the training data, then {drifted} with "
        f"{DRIFTING} +{SHIFT_CM} cm, straight to Kafka (model {model}, production v{version})"
    )
    alert = await alerts
    if alert is None:
        say(f"    no drift alert within {wait_seconds:.0f}s; see {drift_url}/v1/drift/status")
        return
    _describe(alert, times[steady], sent_at, drifted, times, drift_url)


async def _publish(
    settings: ModelbusSettings,
    model: str,
    features: list[str],
    rows: np.ndarray,
    times: list[datetime],
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=5,
        **settings.kafka_security.client_options(),
    )
    await producer.start()
    topic = settings.topic(REQUESTS.name)
    try:
        for row, at in zip(rows.tolist(), times, strict=True):
            request = PredictionRequest(
                request_id=f"drift-{uuid.uuid4().hex[:12]}",
                model=model,
                inputs={name: round(value, 2) for name, value in zip(features, row, strict=True)},
                created_at=at,
            )
            record = encode(REQUESTS, request, key=request.request_id, source="demo", topic=topic)
            await producer.send(topic, record.value, key=record.key, headers=record.headers)
        await producer.flush()
    finally:
        await producer.stop()


async def _first_alert(
    settings: ModelbusSettings, model: str, version: int, wait_seconds: float
) -> DriftAlert | None:
    """The first data-drift episode of the version to open on drift-alerts."""
    consumer = AIOKafkaConsumer(
        settings.topic(DRIFT_ALERTS.name),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="latest",
        isolation_level="read_committed",
        group_id=None,
        **settings.kafka_security.client_options(),
    )
    await consumer.start()
    deadline = time.monotonic() + wait_seconds
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        alert = decode(DRIFT_ALERTS, record.value, record.headers)
                    except UndecodableMessage:
                        continue
                    if (alert.model, alert.version, alert.kind, alert.status) == (
                        model,
                        version,
                        "data",
                        "open",
                    ):
                        return alert
    finally:
        await consumer.stop()
    return None


def _describe(
    alert: DriftAlert,
    onset: datetime,
    sent_at: float,
    drifted: int,
    times: list[datetime],
    drift_url: str,
) -> None:
    opened = alert.opened_at or alert.detected_at
    after_onset = sum(1 for at in times if onset <= at <= opened)
    seconds = alert.detected_at.timestamp() - sent_at
    say(
        f"    ALERT {alert.severity}: {alert.kind} drift on {alert.feature!r} "
        f"({alert.method} {alert.statistic:.1f} >= threshold {alert.threshold:.1f})"
    )
    say(
        f"    delay: {after_onset} of the {drifted} drifted requests had arrived when the "
        f"episode opened; alert on drift-alerts {seconds:.1f}s after sending began"
    )
    reference, current = alert.reference, alert.current
    say(
        f"    evidence: reference mean {_num(reference.get('mean'))} sd "
        f"{_num(reference.get('std'))}; current window ({current.get('count', '?')} requests) "
        f"mean {_num(current.get('mean'))} sd {_num(current.get('std'))}"
    )
    window_test = alert.evidence.get("window_test") or {}
    if window_test:
        say(
            f"              window test: PSI {_num(window_test.get('psi'))}, KS "
            f"{_num(window_test.get('ks'))} (p {_num(window_test.get('p_value'), '.1e')})"
        )
    ranked = ", ".join(f"{t.feature} {t.statistic:.2f}" for t in alert.top_features[:4])
    say(f"    top features (CUSUM level / threshold): {ranked}")
    say(
        f"    episode {alert.episode_id[:12]}…; report: "
        f"{drift_url}/v1/drift/models/{alert.model}/versions/{alert.version}/report"
    )


def _num(value: Any, spec: str = ".3f") -> str:
    return format(value, spec) if isinstance(value, int | float) else "?"
