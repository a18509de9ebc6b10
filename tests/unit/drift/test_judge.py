"""The judge without Kafka: sketches applied once, episodes opened once, state that cannot
be read replaced rather than fatal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from devtools.sample_models import gaussian_classifier
from services.drift.domain.episodes import EpisodeRules
from services.drift.domain.monitor import VersionMonitors
from services.drift.domain.sketching import MonitorSettings, VersionSketching
from services.drift.domain.version_reference import VersionReference
from services.drift.service_layer.judge import Judge
from shared.contracts import DriftSketch, SketchSource
from shared.profile import build_profile
from shared.signature import infer_signature
from shared.tabular import parse_csv

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def reference() -> VersionReference:
    sample = gaussian_classifier(features=4, rows=3000)
    data = parse_csv(sample.dataset)
    signature = infer_signature(data, target="target", task="classification")
    return VersionReference("m", 1, "classification", build_profile(data, signature), {})


class Store:
    def __init__(self) -> None:
        self.states: dict[tuple[int, tuple[str, int]], dict[str, Any]] = {}

    def get(self, partition: int, key: tuple[str, int]) -> dict[str, Any] | None:
        return self.states.get((partition, key))

    def put(self, partition: int, key: tuple[str, int], state: dict[str, Any]) -> None:
        self.states[(partition, key)] = state


def sketches(
    reference: VersionReference, shift: float, *, batches: int, start: int = 0
) -> list[DriftSketch]:
    sketching = VersionSketching(MonitorSettings())
    rng = np.random.default_rng(start)
    made = []
    for index in range(batches):
        rows = rng.standard_normal((100, 4))
        rows[:, 2] += shift
        names = [f"x{column}" for column in range(4)]
        body = sketching.requests(
            reference, [dict(zip(names, row, strict=True)) for row in rows.tolist()]
        )
        first = (start + index) * 100
        made.append(
            DriftSketch(
                sketch_id=f"s{first}",
                model="m",
                version=1,
                stream="requests",
                source=SketchSource(
                    topic="requests", partition=0, first_offset=first, last_offset=first + 99
                ),
                events=100,
                first_at=T0 + timedelta(seconds=first),
                last_at=T0 + timedelta(seconds=first + 99),
                body=body,
            )
        )
    return made


def run(
    judge: Judge, store: Store, reference: VersionReference, batch: list[DriftSketch]
) -> list[Any]:
    judge.begin()
    alerts = []
    for sketch in batch:
        alerts += judge.apply(0, sketch, reference, store.get(0, ("m", 1))).alerts
    judge.finish(store)
    return alerts


def events(store: Store) -> int:
    return int(store.states[(0, ("m", 1))]["monitor"]["data"]["events"])


def new_judge() -> Judge:
    return Judge(VersionMonitors(MonitorSettings()), EpisodeRules(), now=lambda: T0)


def test_a_replayed_sketch_changes_nothing_and_a_drift_opens_one_episode(
    reference: VersionReference,
) -> None:
    judge, store = new_judge(), Store()
    steady = sketches(reference, 0.0, batches=10)
    drifted = sketches(reference, 1.0, batches=10, start=10)
    assert run(judge, store, reference, steady) == []
    assert run(judge, store, reference, steady[-3:]) == []  # replayed: already applied
    assert events(store) == 1000
    opened = run(judge, store, reference, drifted)
    assert [(a.status, a.feature) for a in opened] == [("open", "x2")]
    assert run(judge, store, reference, drifted) == []  # the whole drift replayed
    assert events(store) == 2000


def test_a_state_that_cannot_be_read_is_replaced_not_fatal(reference: VersionReference) -> None:
    judge, store = new_judge(), Store()
    store.put(0, ("m", 1), {"monitor": {"data": {"levels": "forged"}}, "episodes": {}})
    run(judge, store, reference, sketches(reference, 0.0, batches=2))
    assert events(store) == 200
