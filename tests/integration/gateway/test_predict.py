"""Predict through the gateway: validated, recorded once, published to `requests`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shared.contracts import ClassifierOutput, Prediction, PredictionRequest
from shared.db import make_engine
from shared.jobstore.store import JobStore
from shared.kafka.codec import decode
from shared.kafka.headers import parse_headers
from shared.topics import REQUESTS
from tests.integration.gateway.conftest import IRIS_INPUTS, Gateway, Stack, StartGateway
from tests.integration.gateway.topic_contents import read_to_end
from tests.support.topic_reader import read_records_sync

pytestmark = [pytest.mark.kafka]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_a_valid_prediction_is_queued_on_requests_and_pending(
    start_gateway: StartGateway, own_topics: str, stack: Stack
) -> None:
    with start_gateway(topic_prefix=own_topics) as gateway:
        response = gateway.predict(
            "iris",
            {
                "request_id": "order-1",
                "inputs": IRIS_INPUTS,
                "callback": {"url": "https://caller.example/hooks/iris"},
                "routing_key": "customer-42",
            },
            headers={"traceparent": INCOMING_TRACEPARENT},
        )

        assert response.status_code == 202, response.text
        assert response.json() == {
            "request_id": "order-1",
            "status": "pending",
            "status_url": "/v1/jobs/order-1",
        }
        assert response.headers["Location"] == "/v1/jobs/order-1"

        job = gateway.call("GET", "/v1/jobs/order-1")
        assert job.status_code == 200, job.text
        assert job.json()["status"] == "pending"
        assert job.json()["model"] == "iris"
        assert job.json()["prediction"] is None
        assert job.json()["delivery"]["callback_url"] == "https://caller.example/hooks/iris"

    [record] = read_records_sync(stack.bootstrap, f"{own_topics}requests", expected=1)
    assert record.key == b"customer-42"
    request = decode(REQUESTS, record.value, record.headers)
    assert isinstance(request, PredictionRequest)
    assert request.request_id == "order-1"
    assert request.model == "iris"
    assert request.inputs == IRIS_INPUTS
    assert request.version is None
    assert request.callback is not None
    assert str(request.callback.url) == "https://caller.example/hooks/iris"
    headers = dict(record.headers)
    assert headers["ce_type"] == REQUESTS.event_type.encode()
    assert headers["ce_source"] == b"/modelbus/gateway"
    assert headers["ce_subject"] == b"customer-42"
    assert headers["ce_specversion"] == b"1.0"
    traceparent = parse_headers(record.headers).traceparent
    assert traceparent is not None
    _, trace_id, span_id, _ = traceparent.split("-")
    assert trace_id == TRACE_ID  # the caller's trace continues through Kafka
    assert span_id != "00f067aa0ba902b7"  # ...from the gateway's own (producer) span


def test_without_request_id_a_new_one_is_made_and_keys_the_record(
    start_gateway: StartGateway, own_topics: str, stack: Stack
) -> None:
    with start_gateway(topic_prefix=own_topics) as gateway:
        response = gateway.predict("iris", {"inputs": IRIS_INPUTS, "version": 1})

    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    assert len(request_id) >= 16
    [record] = read_records_sync(stack.bootstrap, f"{own_topics}requests", expected=1)
    assert record.key == request_id.encode()
    assert json.loads(record.value)["version"] == 1


def test_a_job_shows_its_prediction_once_delivery_recorded_it(
    start_gateway: StartGateway, own_topics: str
) -> None:
    with start_gateway(topic_prefix=own_topics) as gateway:
        assert gateway.predict("iris", {"request_id": "r-done", "inputs": IRIS_INPUTS}).is_success
        store = JobStore(make_engine(gateway.settings.jobs_database_url))
        store.record_predictions(
            [
                Prediction(
                    request_id="r-done",
                    model="iris",
                    version=1,
                    variant="production",
                    status="ok",
                    output=ClassifierOutput(
                        label="setosa",
                        probabilities={"setosa": 0.97, "versicolor": 0.02, "virginica": 0.01},
                    ),
                    latency_ms=12.5,
                )
            ]
        )
        store.engine.dispose()

        job = gateway.call("GET", "/v1/jobs/r-done").json()

    assert job["status"] == "done"
    assert job["prediction"]["output"]["label"] == "setosa"
    assert job["prediction"]["version"] == 1
    assert job["delivery"]["status"] == "none"  # no callback was given
    assert job["delivery"]["attempts"] == []


def test_a_retried_request_is_queued_once(
    start_gateway: StartGateway, own_topics: str, stack: Stack, database_url: str
) -> None:
    """Idempotency on SQLite and PostgreSQL job stores alike."""
    body = {"request_id": "retry-me", "inputs": IRIS_INPUTS}
    with start_gateway(topic_prefix=own_topics, jobs_database_url=database_url) as gateway:
        first = gateway.predict("iris", body)
        second = gateway.predict("iris", body)
        by_header = [
            gateway.predict("iris", {"inputs": IRIS_INPUTS}, headers={"Idempotency-Key": "hdr-1"})
            for _ in range(2)
        ]
        other_model = gateway.predict("iris-twin", body)
        job = gateway.call("GET", "/v1/jobs/retry-me").json()

    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert first.headers["Location"] == second.headers["Location"]
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert [r.status_code for r in by_header] == [202, 202]
    assert [r.json()["request_id"] for r in by_header] == ["hdr-1", "hdr-1"]
    assert other_model.status_code == 409
    assert other_model.json()["error"]["code"] == "request_id_conflict"
    assert job["model"] == "iris"

    records = read_to_end(stack.bootstrap, f"{own_topics}requests")
    ids = sorted(json.loads(record.value)["request_id"] for record in records)
    assert ids == ["hdr-1", "retry-me"]


def test_a_retry_publishes_a_job_whose_first_attempt_died_before_publishing(
    start_gateway: StartGateway, own_topics: str, stack: Stack, database_url: str
) -> None:
    """A job recorded as pending but never published (the gateway died in between) is
    published when the caller retries, once it has been pending long enough."""
    with start_gateway(
        topic_prefix=own_topics,
        jobs_database_url=database_url,
        republish_pending_after_seconds=0,
    ) as gateway:
        probe = gateway.predict("iris", {"request_id": "probe", "inputs": IRIS_INPUTS})
        owner = gateway.call("GET", "/v1/jobs/probe").json()["owner"]
        orphan = PredictionRequest(request_id="orphan", model="iris", inputs=IRIS_INPUTS)
        JobStore(make_engine(database_url)).create_pending(orphan, owner)  # never published
        retried = gateway.predict("iris", {"request_id": "orphan", "inputs": IRIS_INPUTS})

    assert probe.status_code == 202
    assert retried.status_code == 202 and retried.headers["Idempotent-Replayed"] == "true"
    records = read_to_end(stack.bootstrap, f"{own_topics}requests")
    published = [decode(REQUESTS, record.value) for record in records]
    assert sorted(request.request_id for request in published) == ["orphan", "probe"]
    assert next(r for r in published if r.request_id == "orphan").inputs == IRIS_INPUTS


def test_request_id_in_body_and_header_must_agree(shared_gateway: Gateway) -> None:
    response = shared_gateway.predict(
        "iris",
        {"request_id": "one", "inputs": IRIS_INPUTS},
        headers={"Idempotency-Key": "two"},
    )

    assert response.status_code == 422
    assert "differ" in response.json()["error"]["message"]


def test_invalid_inputs_are_refused_naming_every_feature(shared_gateway: Gateway) -> None:
    request_id = f"bad-{uuid.uuid4().hex[:8]}"
    response = shared_gateway.predict(
        "iris",
        {
            "request_id": request_id,
            "inputs": {
                "sepal_length": "long",
                "sepal_width": 3.0,
                "petal_length": 1.0,
                "colour": 1,
            },
        },
    )

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    problems = {(problem["field"], problem["code"]) for problem in error["details"]}
    assert problems == {
        ("sepal_length", "wrong_type"),
        ("petal_width", "missing_feature"),
        ("colour", "unknown_feature"),
    }
    for feature in ("sepal_length", "petal_width", "colour"):
        assert feature in error["message"]
    assert shared_gateway.call("GET", f"/v1/jobs/{request_id}").status_code == 404


def test_a_malformed_body_gets_the_same_error_shape(shared_gateway: Gateway) -> None:
    response = shared_gateway.predict("iris", {"inputs": {}, "version": 0, "model": "iris"})

    assert response.status_code == 422
    fields = {problem["field"] for problem in response.json()["error"]["details"]}
    assert fields == {"body.inputs", "body.version", "body.model"}


@pytest.mark.parametrize(
    ("model", "extra", "status", "code", "phrase"),
    [
        ("no-such-model", {}, 404, "unknown_model", "no-such-model"),
        ("Not A Name", {}, 404, "unknown_model", "can exist"),
        ("iris", {"version": 99}, 404, "unknown_version", "99"),
        ("unserved", {}, 409, "no_deployment", "no production version"),
    ],
)
def test_models_and_versions_that_cannot_serve_are_refused(
    shared_gateway: Gateway, model: str, extra: dict[str, Any], status: int, code: str, phrase: str
) -> None:
    response = shared_gateway.predict(model, {"inputs": IRIS_INPUTS} | extra)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert phrase in response.json()["error"]["message"]


def test_a_pinned_version_serves_a_model_without_production(shared_gateway: Gateway) -> None:
    response = shared_gateway.predict("unserved", {"inputs": IRIS_INPUTS, "version": 1})

    assert response.status_code == 202, response.text


def test_an_unknown_job_is_404_with_the_error_body(shared_gateway: Gateway) -> None:
    response = shared_gateway.call("GET", "/v1/jobs/never-submitted")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_job"
