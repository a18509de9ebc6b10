"""Drift on the real broker: a shift opens exactly one episode with its evidence, a
stationary stream opens none, a concept shift in labels opens a concept episode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer

from shared.topics import DRIFT_ALERTS
from tests.integration.drift.conftest import FEATURES, MODEL
from tests.integration.drift.support import gaussian_rows, labels_for, requests_for
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka]
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "schemas" / "drift-alerts.schema.json").read_text()
)


async def test_a_covariate_shift_opens_exactly_one_episode_with_its_evidence(
    drift_factory: Any,
) -> None:
    before = gaussian_rows(2000, features=FEATURES, seed=1)
    after = gaussian_rows(3000, features=FEATURES, seed=2, shift={"x3": 1.0})
    async with drift_factory() as harness:
        await harness.send_requests(requests_for(MODEL, before))
        await harness.until_measured(MODEL, 2000)
        assert await harness.alerts(settle_seconds=0.5) == []
        await harness.send_requests(requests_for(MODEL, after, start=2000))
        await harness.until_measured(MODEL, 5000)
        alerts = await harness.alerts()
        async with harness.api() as api:
            status = (await api.get(f"/v1/drift/models/{MODEL}/versions/1")).json()
            report = await api.get(f"/v1/drift/models/{MODEL}/versions/1/report")
            anonymous = await api.get("/v1/drift/status", headers={"Authorization": ""})

    assert [(a.status, a.kind, a.feature) for a in alerts] == [("open", "data", "x3")]
    alert = alerts[0]
    assert alert.model == MODEL and alert.version == 1
    assert alert.statistic >= alert.threshold > 0
    assert alert.reference["mean"] == pytest.approx(0.0, abs=0.1)
    assert alert.reference["std"] == pytest.approx(1.0, abs=0.1)
    assert alert.current["count"] > 0 and "mean" in alert.current
    levels, thresholds = alert.evidence["levels"], alert.evidence["thresholds"]
    assert levels["mean_up"] >= thresholds["mean_up"] and levels["mean_down"] == 0
    assert alert.top_features and alert.top_features[0].feature == "x3"
    assert alert.window.end is not None and alert.opened_at is not None

    drifting = [s for s in status["subjects"] if s["drifting"]]
    assert [(s["kind"], s["subject"]) for s in drifting] == [("data", "x3")]
    assert report.status_code == 200 and "text/html" in report.headers["content-type"]
    assert "x3" in report.text and "<svg" in report.text
    assert "http://" not in report.text and "https://" not in report.text  # nothing fetched
    assert anonymous.status_code == 401


async def test_a_stationary_stream_opens_no_episode(drift_factory: Any) -> None:
    rows = gaussian_rows(8000, features=FEATURES, seed=3)
    async with drift_factory() as harness:
        await harness.send_requests(requests_for(MODEL, rows))
        await harness.until_measured(MODEL, 8000)
        alerts = await harness.alerts()
    assert alerts == []


async def test_a_concept_shift_in_labels_opens_a_concept_episode(drift_factory: Any) -> None:
    rng = np.random.default_rng(4)
    correct = (rng.random(2500) < 0.9).tolist() + (rng.random(1500) < 0.65).tolist()
    async with drift_factory() as harness:
        await harness.send_labels(labels_for(MODEL, correct))

        async def measured() -> bool:
            return bool(harness.measured_labels(MODEL) >= len(correct))

        await eventually(measured, timeout=60, what="every label measured")
        alerts = await harness.alerts()
    opened = [a for a in alerts if a.status == "open"]
    assert [(a.kind, a.variant) for a in opened] == [("concept", "production")]
    assert opened[0].current and opened[0].reference


async def test_a_plain_consumer_reads_alerts_the_schema_describes(drift_factory: Any) -> None:
    rows = gaussian_rows(2500, features=FEATURES, seed=5, shift={"x0": 1.5})
    async with drift_factory() as harness:
        await harness.send_requests(requests_for(MODEL, rows))
        await harness.until_measured(MODEL, 2500)
        topic = harness.settings.topic(DRIFT_ALERTS.name)
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=harness.bootstrap,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            group_id=None,
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=5000)
        finally:
            await consumer.stop()
    payloads = [json.loads(record.value) for records in batch.values() for record in records]
    assert payloads, "no alert on drift-alerts"
    for payload in payloads:
        jsonschema.validate(payload, SCHEMA)
    assert payloads[0]["feature"] == "x0" and payloads[0]["status"] == "open"


async def test_a_republished_label_counts_once(drift_factory: Any) -> None:
    rng = np.random.default_rng(6)
    labels = labels_for(MODEL, (rng.random(1200) < 0.9).tolist())
    async with drift_factory() as harness:
        await harness.send_labels(labels)
        await harness.send_labels(labels[:300])  # the feedback service replays after a crash

        async def settled() -> bool:
            sketcher, judge = harness.service.sketch_process, harness.service.judge_process
            assert sketcher is not None and judge is not None
            return (
                sketcher.sketcher_counts.labels_repeated == 300
                and judge.sketches_applied == sketcher.sketcher_counts.sketches
                and harness.measured_labels(MODEL) >= len(labels)
            )

        await eventually(settled, timeout=60, what="every label and every sketch judged")
        metrics = harness.service.metrics_text()
    assert harness.measured_labels(MODEL) == len(labels)
    assert "modelbus_drift_labels_repeated_total 300.0" in metrics
