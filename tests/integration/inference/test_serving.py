"""A worker against the real broker and registry: good and bad requests in one batch."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from devtools.sample_models import iris_classifier
from services.inference.bootstrap import build_worker
from shared.clients.registry import RegistryCallFailed
from shared.contracts import ErrorCode, PredictionRequest
from shared.kafka.codec import decode, encode
from shared.kafka.headers import parse_headers
from shared.topics import DEAD_LETTERS, PREDICTIONS, REQUESTS
from tests.integration.inference.conftest import SETOSA, Stack, TopicFollower, answered, by_request

VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.6, "petal_width": 2.2}


async def test_mixed_batch_every_request_gets_exactly_its_answer(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier(), iris_classifier(c=0.05)])
    good = [iris_request(f"good-{i}", routing_key=f"cust-{i}") for i in range(20)]
    good.append(iris_request("good-virginica", inputs=VIRGINICA))
    good.append(iris_request("pinned-v2", version=2))
    expected_errors: dict[str, str] = {
        "unknown-model": ErrorCode.UNKNOWN_MODEL,
        "unknown-version": ErrorCode.UNKNOWN_VERSION,
        "out-of-range": ErrorCode.INVALID_INPUT,
        "wrong-type": ErrorCode.INVALID_INPUT,
        "missing-feature": ErrorCode.INVALID_INPUT,
        "schema-violation": ErrorCode.UNDECODABLE,
    }
    bad = [
        PredictionRequest(request_id="unknown-model", model="churn", inputs=SETOSA),
        iris_request("unknown-version", version=7),
        iris_request("out-of-range", inputs=SETOSA | {"petal_length": 70.0}),
        iris_request("wrong-type", inputs=SETOSA | {"sepal_width": "wide"}),
        iris_request("missing-feature", inputs={"sepal_length": 5.0, "sepal_width": 3.0}),
    ]
    async with stack.worker(max_batch_records=500, batch_timeout_ms=200) as worker:
        # Everything lands before the worker polls again, so most of it shares a batch.
        await stack.send_raw(b'{"request_id": "malformed", "model": ', key=b"raw-1")
        await stack.send_raw(
            orjson.dumps({"request_id": "schema-violation", "model": "iris", "inputs": "x"}),
            key=b"raw-2",
        )
        await stack.send(good[:10] + bad + good[10:])

        async with TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower:
            ids = [r.request_id for r in good + bad] + ["schema-violation"]
            predictions = await follower.until(answered(ids))
        async with TopicFollower(stack.bootstrap, stack.topic(DEAD_LETTERS.name)) as letters:
            await letters.until_count(2)
            dead = [decode(DEAD_LETTERS, r.value, r.headers) for r in letters.records]

        answers = by_request(predictions)
        assert len(predictions) == len(answers) == len(ids)  # exactly one answer each
        for request in good:
            answer = answers[request.request_id]
            assert answer.status == "ok", answer
            assert answer.routing_key == request.routing_key
        assert answers["good-0"].output.label == "setosa"  # type: ignore[union-attr]
        assert answers["good-virginica"].output.label == "virginica"  # type: ignore[union-attr]
        assert {answers[r.request_id].version for r in good if r.version is None} == {1}
        assert answers["pinned-v2"].version == 2
        for request_id, code in expected_errors.items():
            answer = answers[request_id]
            assert answer.status == "error", request_id
            assert answer.error is not None and answer.error.code == code, answer
        assert "out_of_range" in answers["out-of-range"].error.message  # type: ignore[union-attr]
        assert "wrong_type" in answers["wrong-type"].error.message  # type: ignore[union-attr]
        missing = answers["missing-feature"].error.message  # type: ignore[union-attr]
        assert "'petal_length'" in missing and "'petal_width'" in missing

        assert sorted(letter.error_code for letter in dead) == [
            "malformed_json",
            "schema_violation",
        ]
        malformed = next(letter for letter in dead if letter.error_code == "malformed_json")
        assert malformed.key == "raw-1"
        assert base64.b64decode(malformed.value or "").startswith(b'{"request_id": "malformed"')
        assert {r.key for r in letters.records} == {b"raw-1", b"raw-2"}

        keys = {r.key for r in follower.records}
        assert b"cust-3" in keys and b"unknown-model" in keys

        metrics = await _get(worker.health_port, "/metrics")
        assert 'modelbus_inference_errors_total{code="invalid_input"} 3' in metrics
        assert 'modelbus_inference_dead_letters_total{code="malformed_json"} 1' in metrics
        assert "modelbus_inference_records_total 29" in metrics
        assert (
            await httpx.AsyncClient().get(_url(worker.health_port, "/healthz"))
        ).status_code == 200


async def test_repeated_inputs_are_served_from_the_cache(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier()])
    async with stack.worker(result_cache_size=100) as worker:
        async with TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower:
            await stack.send([iris_request("first")])
            await follower.until(answered(["first"]))
            await stack.send([iris_request(f"again-{i}") for i in range(5)])
            predictions = await follower.until(answered([f"again-{i}" for i in range(5)]))
        outputs = {p.output.model_dump_json() for p in predictions if p.output is not None}
        assert len(outputs) == 1 and len(predictions) == 6
        assert worker.service.cache.hits == 5
        metrics = await _get(worker.health_port, "/metrics")
        assert "modelbus_inference_cache_hits_total 5" in metrics


def _url(port: int | None, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


async def _get(port: int | None, path: str) -> Any:
    async with httpx.AsyncClient() as http:
        response = await http.get(_url(port, path))
        response.raise_for_status()
        return response.text


async def test_sampled_trace_context_continues_into_the_prediction(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier()])
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    request = iris_request("traced")
    async with (
        stack.worker(),
        TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower,
    ):
        record = encode(REQUESTS, request, key="traced", source="/tests")
        headers = [(n, v) for n, v in record.headers if n != "traceparent"]
        await stack.producer.send_and_wait(
            stack.topic(REQUESTS.name),
            record.value,
            key=record.key,
            headers=[*headers, ("traceparent", traceparent.encode())],
        )
        await follower.until(answered(["traced"]))
    metadata = parse_headers(follower.records[0].headers)
    assert metadata.traceparent is not None
    assert metadata.traceparent.split("-")[1] == trace_id
    assert metadata.event_type == PREDICTIONS.event_type


async def test_a_rejected_registry_key_fails_start_up(stack: Stack) -> None:
    worker = build_worker(stack.settings(registry_api_key="not-a-real-key-0123456789"))
    try:
        with pytest.raises(RegistryCallFailed) as refused:
            await worker.start()
        assert refused.value.status_code == 401
    finally:
        await worker.stop()


async def test_readiness_reports_what_the_worker_serves(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier(), iris_classifier(c=0.05)])
    async with stack.worker() as worker:
        async with httpx.AsyncClient() as http:
            ready = (await http.get(_url(worker.health_port, "/readyz"))).json()
        assert ready["status"] == "ready"
        assert ready["checks"]["partitions_assigned"] is True
        assert ready["models"] == ["iris"]
        assert ready["loaded_versions"] == ["iris:1"]  # production preloaded at start-up
        assert sorted(ready["partitions"]) == [0, 1, 2, 3]
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(_url(worker.health_port, "/readyz"))
