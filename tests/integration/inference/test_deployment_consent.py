"""Workers serve only what the registry consents to: no rejected pins, no stale deployments."""

from __future__ import annotations

import time
from collections.abc import Callable

from devtools.sample_models import iris_classifier
from shared.contracts import DeploymentState, ErrorCode, ModelEvent, Prediction, PredictionRequest
from shared.kafka.publisher import Publisher
from shared.topics import MODEL_EVENTS, PREDICTIONS
from tests.integration.inference.conftest import Stack, TopicFollower, answered, by_request


async def _answer(stack: Stack, follower: TopicFollower, request: PredictionRequest) -> Prediction:
    await stack.send([request])
    found = await follower.until(answered([request.request_id]))
    return by_request(found)[request.request_id]


async def _until_answer(
    stack: Stack,
    follower: TopicFollower,
    make: Callable[[str], PredictionRequest],
    condition: Callable[[Prediction], bool],
    *,
    tag: str,
) -> Prediction:
    """Send a probe until one answer meets `condition` (10 s at most)."""
    deadline = time.monotonic() + 10.0
    sent = 0
    while time.monotonic() < deadline:
        answer = await _answer(stack, follower, make(f"{tag}-{sent}"))
        if condition(answer):
            return answer
        sent += 1
    raise AssertionError(f"no answer met the condition within 10 s ({tag})")


def _refused(code: str) -> Callable[[Prediction], bool]:
    return lambda answer: (
        answer.status == "error" and answer.error is not None and (answer.error.code == code)
    )


async def test_a_request_pinning_a_rejected_or_unknown_version_gets_an_error(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier(), iris_classifier(c=0.05)])
    candidate = iris_classifier(c=0.5)
    with stack.registry.client("publisher") as publisher:
        publisher.register_version(
            "iris",
            artifact=candidate.artifact,
            dataset=candidate.dataset,
            metadata={"code_version": "abc1234", "metrics": {}},
        )

    async with (
        stack.worker(),
        TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower,
    ):
        before = await _answer(stack, follower, iris_request("before", version=3))
        assert (before.status, before.version) == ("ok", 3)
        with stack.registry.client("approver") as approver:
            approver.decide("iris", 3, "reject", "overfits")
        refused = await _until_answer(
            stack,
            follower,
            lambda request_id: iris_request(request_id, version=3),
            _refused(ErrorCode.VERSION_REJECTED),
            tag="after-rejection",
        )
        assert refused.version == 3 and refused.output is None
        assert refused.error is not None and "rejected" in refused.error.message
        unknown = await _answer(stack, follower, iris_request("unknown", version=9))
        assert _refused(ErrorCode.UNKNOWN_VERSION)(unknown) and unknown.output is None
        approved = await _answer(stack, follower, iris_request("approved", version=2))
        assert (approved.status, approved.version) == ("ok", 2)
        routed = await _answer(stack, follower, iris_request("routed"))
        assert (routed.status, routed.version, routed.variant) == ("ok", 1, "production")

    # A worker that starts after the rejection learns it when it loads the version.
    async with (
        stack.worker(),
        TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower,
    ):
        fresh = await _answer(stack, follower, iris_request("fresh-worker", version=3))
        assert _refused(ErrorCode.VERSION_REJECTED)(fresh), fresh


async def test_a_worker_ignores_deployment_events_no_newer_than_its_state(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier(), iris_classifier(c=0.05)])
    async with (
        stack.worker() as worker,
        TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower,
    ):
        with stack.registry.client("approver") as approver:
            promoted = approver.promote("iris", 2, "tests")
        assert promoted["revision"] == 2
        await _until_answer(
            stack, follower, iris_request, lambda answer: answer.version == 2, tag="promoted"
        )
        seen = worker.metrics.model_events["deployment.changed"]

        # Replays of older states, as an unordered relay or a re-sent batch would publish.
        publisher = Publisher(stack.bootstrap, source="registry", topic_prefix=stack.prefix)
        await publisher.start()
        try:
            for revision in (1, 2):
                replay = ModelEvent(
                    event_type="deployment.changed",
                    model="iris",
                    deployment=DeploymentState(production=1, revision=revision),
                    actor="replay",
                )
                await publisher.publish(MODEL_EVENTS, replay, key="iris")
        finally:
            await publisher.stop()
        deadline = time.monotonic() + 10.0
        while worker.metrics.model_events["deployment.changed"] < seen + 2:
            assert time.monotonic() < deadline, "the worker did not read the replayed events"
            await follower.poll()

        probes = [iris_request(f"after-replay-{i}", routing_key=f"k-{i}") for i in range(20)]
        await stack.send(probes)
        answers = by_request(await follower.until(answered(r.request_id for r in probes)))
        assert {answers[r.request_id].version for r in probes} == {2}

        with stack.registry.client("approver") as approver:
            rolled_back = approver.rollback("iris", "a newer change still applies")
        assert rolled_back["revision"] == 3
        await _until_answer(
            stack, follower, iris_request, lambda answer: answer.version == 1, tag="rolled-back"
        )
