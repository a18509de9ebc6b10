"""Canary, shadow, cascade and rollback against a real registry and broker."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable

import httpx

from devtools.sample_models import iris_classifier
from services.inference.domain.routing import choose_route
from shared.contracts import DeploymentState, PredictionRequest
from shared.topics import PREDICTIONS
from tests.integration.inference.conftest import Stack, TopicFollower, answered, by_request

BORDERLINE = {"sepal_length": 6.0, "sepal_width": 2.7, "petal_length": 5.0, "petal_width": 1.6}


async def test_canary_share_is_within_tolerance_and_sticky_per_key(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier(), iris_classifier(c=0.05)])
    with stack.registry.client("approver") as approver:
        approver.start_canary("iris", 2, 0.3, "tests")
    distinct = [iris_request(f"d-{i}", routing_key=f"customer-{i}") for i in range(1500)]
    repeated = [
        iris_request(f"r-{key}-{copy}", routing_key=f"repeat-{key}")
        for copy in range(4)
        for key in range(40)
    ]
    async with (
        stack.worker(),
        TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower,
    ):
        await stack.send(distinct + repeated)
        predictions = await follower.until(answered(r.request_id for r in distinct + repeated))

    answers = by_request(predictions)
    canary = sum(answers[r.request_id].variant == "canary" for r in distinct)
    sigma = math.sqrt(0.3 * 0.7 / len(distinct))
    assert abs(canary / len(distinct) - 0.3) <= 4 * sigma
    assert all(
        (answers[r.request_id].version, answers[r.request_id].variant)
        in {(1, "production"), (2, "canary")}
        for r in distinct
    )
    versions_per_key: dict[str, set[int]] = defaultdict(set)
    for request in repeated:
        versions_per_key[request.partition_key].add(answers[request.request_id].version)
    assert all(len(versions) == 1 for versions in versions_per_key.values())
    assert {v for versions in versions_per_key.values() for v in versions} == {1, 2}
    deployment = DeploymentState(production=1, canary=2, canary_weight=0.3)
    for request in distinct[:200]:
        route = choose_route(
            model="iris", pinned=None, routing_key=request.partition_key, deployment=deployment
        )
        assert route is not None and answers[request.request_id].version == route.version


async def test_shadow_answers_every_request_and_is_measured(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier(), iris_classifier(c=0.05)])
    with stack.registry.client("approver") as approver:
        approver.start_shadow("iris", 2, "tests")
    requests = [iris_request(f"s-{i}", routing_key=f"k-{i}") for i in range(60)]
    async with stack.worker() as worker:
        async with TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower:
            await stack.send(requests)
            ids = [r.request_id for r in requests]
            predictions = await follower.until(
                lambda found: answered(ids, "shadow")(found) and answered(ids, "production")(found)
            )
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{worker.health_port}/metrics")).text
            ready = (await http.get(f"http://127.0.0.1:{worker.health_port}/readyz")).json()

    shadows = by_request(predictions, "shadow")
    assert len([p for p in predictions if p.variant == "shadow"]) == len(requests)
    assert all(s.version == 2 and s.status == "ok" for s in shadows.values())
    served = by_request(predictions, "production")
    assert all(p.version == 1 for p in served.values())
    assert all(shadows[r.request_id].routing_key == r.routing_key for r in requests)
    assert 'modelbus_inference_shadow_comparisons_total{model="iris"} 60' in metrics
    assert 'modelbus_inference_shadow_agreement_ratio{model="iris"}' in metrics
    agreement = ready["shadow_agreement"]["iris"]
    assert agreement["compared"] == 60
    agreed = sum(
        shadows[r.request_id].output.label == served[r.request_id].output.label  # type: ignore[union-attr]
        for r in requests
    )
    assert agreement["agreed"] == agreed


async def test_cascade_small_model_answers_confident_requests(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy(
        "iris",
        [iris_classifier(c=100.0), iris_classifier(c=0.05)],
        routing={"cascade": {"small_version": 2, "min_confidence": 0.6}},
    )
    async with (
        stack.worker() as worker,
        TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower,
    ):
        await stack.send([iris_request("sure"), iris_request("unsure", inputs=BORDERLINE)])
        answers = by_request(await follower.until(answered(["sure", "unsure"])))
    assert answers["sure"].version == 2
    assert answers["unsure"].version == 1
    assert worker.metrics.cascade_answers == {("iris", "small"): 1, ("iris", "big"): 1}


async def test_rollback_takes_effect_within_seconds_without_restart(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier(), iris_classifier(c=0.05)])
    async with (
        stack.worker(),
        TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower,
    ):
        with stack.registry.client("approver") as approver:
            approver.promote("iris", 2, "tests")
        await _until_served_by(stack, follower, iris_request, version=2, tag="promoted")
        with stack.registry.client("approver") as approver:
            approver.rollback("iris", "v2 misbehaves")
        rolled_back_at = time.monotonic()
        await _until_served_by(stack, follower, iris_request, version=1, tag="rolled-back")
        assert time.monotonic() - rolled_back_at < 5.0


async def _until_served_by(
    stack: Stack,
    follower: TopicFollower,
    iris_request: Callable[..., PredictionRequest],
    *,
    version: int,
    tag: str,
) -> None:
    """Send a probe every 100 ms until one is answered by `version` (10 s at most)."""
    deadline = time.monotonic() + 10.0
    sent = 0
    while time.monotonic() < deadline:
        probe = iris_request(f"{tag}-{sent}")
        sent += 1
        await stack.send([probe])
        answer = by_request(await follower.until(answered([probe.request_id])))[probe.request_id]
        if answer.version == version:
            return
    raise AssertionError(f"no request was served by version {version} within 10 s")
