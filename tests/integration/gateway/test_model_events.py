"""Deployment changes reach the gateway's signature cache through `model-events`.

`flowers` v1 takes four iris features, v2 only three. With a one-hour cache TTL, only
the event can make the gateway validate against the new production version in seconds.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.gateway.conftest import IRIS_INPUTS, Gateway, Stack, StartGateway

pytestmark = [pytest.mark.kafka]

THREE_FEATURES = {key: value for key, value in IRIS_INPUTS.items() if key != "petal_width"}


def _predict(gateway: Gateway, inputs: dict[str, Any]) -> httpx.Response:
    return gateway.predict("flowers", {"request_id": uuid.uuid4().hex, "inputs": inputs})


def _wait_for(gateway: Gateway, inputs: dict[str, Any], *, timeout: float = 10.0) -> float:
    """Seconds until `inputs` are accepted."""
    started = time.monotonic()
    while (response := _predict(gateway, inputs)).status_code != 202:
        assert response.status_code == 422, response.text
        assert time.monotonic() - started < timeout, response.json()
        time.sleep(0.05)
    return time.monotonic() - started


def test_promotion_and_rollback_change_the_signature_within_seconds(
    start_gateway: StartGateway, stack: Stack
) -> None:
    with start_gateway(signature_cache_seconds=3600.0) as gateway:
        assert _predict(gateway, IRIS_INPUTS).status_code == 202  # v1 cached
        before = _predict(gateway, THREE_FEATURES)
        assert before.status_code == 422
        assert before.json()["error"]["details"][0]["field"] == "petal_width"
        invalidations = gateway.container.catalog.invalidations

        with stack.registry.client("approver") as approver:
            approver.promote("flowers", 2, "three features are enough")
        promoted_after = _wait_for(gateway, THREE_FEATURES)
        stale = _predict(gateway, IRIS_INPUTS)

        with stack.registry.client("approver") as approver:
            approver.rollback("flowers", "back to four")
        rolled_back_after = _wait_for(gateway, IRIS_INPUTS)

        assert gateway.container.catalog.invalidations >= invalidations + 2

    assert promoted_after < 10 and rolled_back_after < 10
    assert stale.status_code == 422
    stale_problems = {(p["field"], p["code"]) for p in stale.json()["error"]["details"]}
    assert stale_problems == {("petal_width", "unknown_feature")}
    assert "version 2 of 'flowers'" in stale.json()["error"]["message"]


def test_a_new_model_is_servable_at_once_after_a_refusal(
    start_gateway: StartGateway, stack: Stack
) -> None:
    """Unknown-model answers are not cached: registering and promoting is enough."""
    with start_gateway() as gateway:
        missing = gateway.predict("late-bloomer", {"inputs": IRIS_INPUTS})
        stack.registry.deploy("late-bloomer", [_iris()])
        accepted = gateway.predict("late-bloomer", {"inputs": IRIS_INPUTS})

    assert missing.status_code == 404
    assert accepted.status_code == 202, accepted.text


def _iris() -> Any:
    from devtools.sample_models import iris_classifier

    return iris_classifier()
