"""The review queue: sampled predictions are claimed, labelled, and the label comes back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devtools.live_registry import LiveRegistry
from tests.integration.feedback.support import classified, feedback, latest_per_variant
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka]


async def test_a_reviewers_label_round_trips_into_labels(
    feedback_factory: Callable[..., Any], registry: LiveRegistry
) -> None:
    async with feedback_factory(registry) as harness:
        await harness.served("disputed", "setosa")  # its shadow disagrees: reviewed
        await harness.send_prediction(classified("disputed", "virginica", variant="shadow"))
        await harness.served("agreed", "setosa")  # its shadow agrees: not reviewed
        await harness.send_prediction(classified("agreed", "setosa", variant="shadow"))
        await harness.served("disliked", "versicolor")
        await harness.send_feedback(feedback("disliked", rating="down"))

        reviewer = harness.http(registry.keys["reviewer"])
        other = harness.http(registry.keys["publisher"])
        client = harness.http(registry.keys["client"])
        async with reviewer, other, client:

            async def queued() -> dict[str, Any]:
                response = await reviewer.get("/v1/review/items", params={"model": "iris"})
                items = {item["request_id"]: item for item in response.json()}
                return items if {"disputed", "disliked"} <= set(items) else {}

            items = await eventually(queued, what="both items in the queue")
            forbidden = await client.get("/v1/review/items")
            claimed = await reviewer.post("/v1/review/items/disputed/claim")
            taken = await other.post("/v1/review/items/disputed/claim")
            unheld = await other.post("/v1/review/items/disputed/label", json={"label": "setosa"})
            unknown = await reviewer.post(
                "/v1/review/items/disputed/label", json={"label": "tulip"}
            )
            labelled = await reviewer.post(
                "/v1/review/items/disputed/label", json={"label": "versicolor"}
            )
            done = await reviewer.get("/v1/review/items", params={"status": "labelled"})

        labels = latest_per_variant(await harness.labels(3))

    assert "agreed" not in items
    assert items["disputed"]["reasons"] == ["shadow_disagreement"]
    assert items["disliked"]["reasons"] == ["negative_rating"]
    assert forbidden.status_code == 403
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "reviewer-key"
    assert taken.status_code == 409 and unheld.status_code == 409
    assert unknown.status_code == 422 and "not a class of the model" in unknown.text
    assert labelled.status_code == 200, labelled.text
    assert [item["request_id"] for item in done.json()] == ["disputed"]
    assert done.json()[0]["decided_by"] == "reviewer-key"
    production = labels[("disputed", "production")]
    assert (production.label, production.authority, production.source) == (
        "versicolor",
        "reviewer",
        "reviewer-key",
    )
    assert labels[("disputed", "shadow")].correct is False
