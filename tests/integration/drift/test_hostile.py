"""Records the drift service cannot read are skipped and counted; the rest is measured,
and the service stays up. A forged sketch on its internal topic changes nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from shared.contracts import DriftSketch, SketchSource
from shared.kafka.codec import encode
from shared.topics import DRIFT_SKETCHES, LABELS, PREDICTIONS, REQUESTS
from tests.integration.drift.conftest import FEATURES, MODEL
from tests.integration.drift.support import T0, gaussian_rows, requests_for

pytestmark = [pytest.mark.kafka]

GARBAGE: list[tuple[bytes | None, list[tuple[str, bytes]]]] = [
    (b"{not json", []),
    (None, []),  # a tombstone
    (b'{"request_id": "x", "model": "sensor", "inputs": {}}', []),  # no inputs
    (b'{"model": "sensor", "inputs": {"x0": 1e400}}', []),  # overflows to inf; no id
    (b"[1, 2, 3]", []),
    (b'{"request_id": "r", "model": "sensor", "inputs": {"x0": 1}}', [("ce_type", b"io.other.v1")]),
    (b"\xff\xfe" * 1000, []),
]


async def test_unreadable_records_are_skipped_and_the_rest_is_measured(drift_factory: Any) -> None:
    rows = gaussian_rows(1500, features=FEATURES, seed=31)
    hostile = {"x0": "tall", "x1": None, "x2": True, "x3": 1e308, "x4": -1e308, "x5": 10**400}
    async with drift_factory() as harness:
        producer = AIOKafkaProducer(bootstrap_servers=harness.bootstrap)
        await producer.start()
        try:
            for spec in (REQUESTS, PREDICTIONS, LABELS, DRIFT_SKETCHES):
                topic = harness.settings.topic(spec.name)
                for value, headers in GARBAGE:
                    await producer.send_and_wait(topic, value, key=MODEL.encode(), headers=headers)
            forged = DriftSketch(
                sketch_id="forged",
                model=MODEL,
                version=1,
                stream="requests",
                source=SketchSource(topic="requests", partition=0, first_offset=0, last_offset=0),
                events=1,
                first_at=T0,
                last_at=T0,
                body={"data": {"events": 1, "numeric": {"count": [1]}}},
            )
            record = encode(DRIFT_SKETCHES, forged, key=MODEL, source="forger")
            topic = harness.settings.topic(DRIFT_SKETCHES.name)
            await producer.send_and_wait(
                topic, record.value, key=record.key, headers=record.headers
            )
        finally:
            await producer.stop()
        mixed: list[dict[str, Any]] = []
        for index, row in enumerate(rows):  # one hostile row in every 75, never a burst
            mixed += [row, hostile] if index % 75 == 74 else [row]
        await harness.send_requests(requests_for(MODEL, mixed))
        await harness.until_measured(MODEL, len(mixed))
        metrics = harness.service.metrics_text()
        alive, _ = harness.service.liveness()
        alerts = await harness.alerts()
    unreadable = re.search(r"^modelbus_drift_records_unreadable_total (\S+)", metrics, re.M)
    assert unreadable is not None and float(unreadable.group(1)) == 3 * len(GARBAGE)
    refused = re.search(r"^modelbus_drift_sketches_refused_total (\S+)", metrics, re.M)
    assert refused is not None and float(refused.group(1)) == 1
    assert alive
    assert harness.measured_events(MODEL) == len(mixed) == 1520
    # Text, None, booleans and integers past a float where numbers belong count as
    # missing, which the reference never was: a data-quality episode each. Lone extreme
    # values are no drift.
    assert sorted((a.feature, a.method) for a in alerts) == [
        ("x0", "missing_rate"),
        ("x1", "missing_rate"),
        ("x2", "missing_rate"),
        ("x5", "missing_rate"),
    ]
