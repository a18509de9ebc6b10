"""Path and query values no request id or model name can have get a 4xx that says so,
never a 500 from the database (PostgreSQL refuses a NUL in text)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest

from devtools.live_registry import LiveRegistry
from devtools.sample_models import iris_classifier
from shared.contracts import PredictionRequest
from tests.integration.feedback.support import (
    T0,
    classified,
    feedback,
    regressed,
    request,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka]


async def test_a_nul_in_a_request_id_or_model_is_refused_with_a_4xx(
    feedback_factory: Callable[..., Any], registry: LiveRegistry
) -> None:
    async with feedback_factory(registry) as harness:
        reviewer = harness.http(registry.keys["reviewer"])
        async with reviewer:
            answers = [
                await reviewer.post("/v1/review/items/a%00b/claim"),
                await reviewer.post("/v1/review/items/a%00b/skip"),
                await reviewer.post("/v1/review/items/a%00b/label", json={"label": "setosa"}),
                await reviewer.get("/v1/review/items", params={"model": "a\x00b"}),
                await reviewer.get("/v1/quality", params={"model": "a\x00b"}),
            ]

    assert [answer.status_code for answer in answers] == [422] * len(answers), [
        answer.text for answer in answers
    ]


async def test_a_reviewers_label_the_store_cannot_keep_is_refused(
    feedback_factory: Callable[..., Any], registry: LiveRegistry
) -> None:
    async with feedback_factory(registry) as harness:
        await harness.send_request(request("priced", model="price"))
        await harness.send_prediction(regressed("priced", 3.0))
        await harness.send_feedback(feedback("priced", rating="down"))
        reviewer = harness.http(registry.keys["reviewer"])
        async with reviewer:

            async def queued() -> bool:
                response = await reviewer.get("/v1/review/items", params={"model": "price"})
                return bool(response.json())

            await eventually(queued, what="the item in the queue")
            claimed = await reviewer.post("/v1/review/items/priced/claim")
            huge = await reviewer.post(
                "/v1/review/items/priced/label",
                content=b'{"label": 100000000000000000000000000000}',
                headers={"content-type": "application/json"},
            )

    assert claimed.status_code == 200, claimed.text
    assert huge.status_code == 422 and "label" in huge.text, huge.text


async def test_export_lists_the_columns_the_csv_has_whatever_the_feature_names(
    feedback_factory: Callable[..., Any], registry: LiveRegistry
) -> None:
    if "iris" not in {model["name"] for model in registry.client("reader").models()}:
        registry.deploy("iris", [iris_classifier()])
    async with feedback_factory(registry) as harness:
        await harness.send_request(
            PredictionRequest(
                request_id="odd",
                model="iris",
                inputs={"sepal, length": 5.1, 'petal\n"width"': 0.2},
                created_at=T0,
            )
        )
        await harness.send_prediction(classified("odd", "setosa"))
        await harness.send_feedback(feedback("odd", label="setosa"))
        await harness.labels(1)
        async with harness.http(registry.keys["publisher"]) as publisher:
            exported = await publisher.post("/v1/models/iris/datasets", json={})

    assert exported.status_code == 201, exported.text
    body = exported.json()
    stored = registry.client("reader").dataset_content(body["sha256"])
    assert body["columns"] == next(csv.reader(io.StringIO(stored.decode())))
    assert body["columns"] == ['petal\n"width"', "sepal, length", "target"]


async def test_a_reviewers_label_with_a_nul_is_refused_before_anything_is_published(
    feedback_factory: Callable[..., Any], registry: LiveRegistry
) -> None:
    async with feedback_factory(registry) as harness:
        await harness.served("nul", "setosa")
        await harness.send_prediction(classified("nul", "virginica", variant="shadow"))
        async with harness.http(registry.keys["reviewer"]) as reviewer:

            async def queued() -> bool:
                items = (await reviewer.get("/v1/review/items")).json()
                return any(item["request_id"] == "nul" for item in items)

            await eventually(queued, what="the item in the queue")
            assert (await reviewer.post("/v1/review/items/nul/claim")).status_code == 200
            refused = await reviewer.post(
                "/v1/review/items/nul/label", json={"label": "set\x00osa"}
            )
            held = await reviewer.post("/v1/review/items/nul/label", json={"label": "setosa"})

    assert refused.status_code == 422 and "NUL" in refused.text
    assert held.status_code == 200
