"""Labelled examples become a dataset snapshot in the registry, hashed and content-addressed."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from typing import Any

import pytest

from devtools.live_registry import LiveRegistry
from devtools.sample_models import iris_classifier
from tests.integration.feedback.support import feedback

pytestmark = [pytest.mark.kafka]


async def test_labelled_examples_export_as_a_hashed_snapshot_without_unreviewed_weak_ones(
    feedback_factory: Callable[..., Any], registry: LiveRegistry
) -> None:
    if "iris" not in {model["name"] for model in registry.client("reader").models()}:
        registry.deploy("iris", [iris_classifier()])
    async with feedback_factory(registry) as harness:
        for name, label in (("a", "setosa"), ("b", "virginica"), ("c", "versicolor")):
            await harness.served(name, label)
        await harness.send_feedback(feedback("a", label="setosa"))
        await harness.send_feedback(feedback("b", label="versicolor"))
        await harness.send_feedback(feedback("c", signal="copied"))  # weak, unreviewed
        await harness.labels(3)
        async with harness.http(registry.keys["publisher"]) as publisher:
            exported = await publisher.post(
                "/v1/models/iris/datasets", json={"description": "live labels"}
            )
            again = await publisher.post("/v1/models/iris/datasets", json={})
        async with harness.http(registry.keys["reader"]) as reader:
            refused = await reader.post("/v1/models/iris/datasets", json={})
            unknown = await reader.get("/v1/quality", params={"model": "nothing"})

    assert exported.status_code == 201, exported.text
    body = exported.json()
    assert (body["rows"], body["excluded_weak"]) == (2, 1)
    assert body["columns"] == ["petal_width", "sepal_length", "target"]
    stored = registry.client("reader").dataset_content(body["sha256"])
    assert hashlib.sha256(stored).hexdigest() == body["sha256"] == body["dataset"]["sha256"]
    rows = list(csv.DictReader(io.StringIO(stored.decode())))
    assert [row["target"] for row in rows] == ["setosa", "versicolor"]
    assert again.json()["sha256"] == body["sha256"]  # the same labels, the same bytes
    assert refused.status_code == 403
    assert unknown.status_code == 200 and unknown.json() == []
