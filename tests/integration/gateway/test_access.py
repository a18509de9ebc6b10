"""Who may call the gateway, how often, and how much: keys, rate limits, body size."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.live_registry import free_port
from shared.clients.registry import RegistryClient
from shared.contracts import ClassifierOutput, Prediction
from shared.jobstore.store import JobStore
from tests.integration.gateway.conftest import IRIS_INPUTS, Gateway, Stack, StartGateway

pytestmark = [pytest.mark.kafka]


def _assert_error(response_json: dict[str, object], code: str) -> None:
    assert set(response_json) == {"error"}
    error = response_json["error"]
    assert isinstance(error, dict)
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert error["message"]


def test_without_a_key_every_route_is_401(shared_gateway: Gateway) -> None:
    answers = [
        shared_gateway.predict("iris", {"inputs": IRIS_INPUTS}, role=None),
        shared_gateway.call("GET", "/v1/jobs/anything", role=None),
        shared_gateway.call(
            "POST", "/v1/feedback", role=None, json={"request_id": "r", "rating": "up"}
        ),
        shared_gateway.call("GET", "/v1/jobs/x", role=None, headers={"Authorization": "Basic x"}),
    ]

    for response in answers:
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"] == "Bearer"
        _assert_error(response.json(), "unauthorized")
        assert "missing API key" in response.json()["error"]["message"]


def test_a_bad_key_is_401_and_the_refusal_is_cached_briefly(shared_gateway: Gateway) -> None:
    authenticator = shared_gateway.container.authenticator
    headers = {"Authorization": "Bearer not-a-real-key-000000000000"}

    first = shared_gateway.predict("iris", {"inputs": IRIS_INPUTS}, role=None, headers=headers)
    calls_after_first = authenticator.registry_calls
    second = shared_gateway.call("GET", "/v1/jobs/x", role=None, headers=headers)

    for response in (first, second):
        assert response.status_code == 401
        _assert_error(response.json(), "unauthorized")
        assert "unknown or revoked" in response.json()["error"]["message"]
    assert authenticator.registry_calls == calls_after_first  # answered from the cache


@pytest.mark.parametrize("role", ["client", "reader", "reviewer", "publisher", "approver", "admin"])
def test_any_role_may_predict_read_jobs_and_send_feedback(
    shared_gateway: Gateway, role: str
) -> None:
    request_id = f"by-{role}"

    predicted = shared_gateway.predict(
        "iris", {"request_id": request_id, "inputs": IRIS_INPUTS}, role=role
    )
    job = shared_gateway.call("GET", f"/v1/jobs/{request_id}", role=role)
    feedback = shared_gateway.call(
        "POST",
        "/v1/feedback",
        role=role,
        json={"request_id": request_id, "rating": "up"},
    )

    assert (predicted.status_code, job.status_code, feedback.status_code) == (202, 200, 202)


def test_a_job_is_visible_to_the_key_that_submitted_it_and_to_admins_only(
    shared_gateway: Gateway,
) -> None:
    submitted = shared_gateway.predict(
        "iris", {"request_id": "owned-1", "inputs": IRIS_INPUTS}, role="publisher"
    )
    assert submitted.status_code == 202, submitted.text

    own = shared_gateway.call("GET", "/v1/jobs/owned-1", role="publisher")
    admin = shared_gateway.call("GET", "/v1/jobs/owned-1", role="admin")
    other = shared_gateway.call("GET", "/v1/jobs/owned-1", role="reader")
    unknown = shared_gateway.call("GET", "/v1/jobs/never-submitted", role="reader")
    replay_by_other = shared_gateway.predict(
        "iris", {"request_id": "owned-1", "inputs": IRIS_INPUTS}, role="reader"
    )

    assert (own.status_code, admin.status_code) == (200, 200)
    assert own.json()["owner"] == admin.json()["owner"] != ""
    assert other.status_code == 404
    _assert_error(other.json(), "unknown_job")
    assert (
        other.json()["error"]["message"].replace("owned-1", "never-submitted")
        == (unknown.json()["error"]["message"])
    )  # no hint that the job exists
    assert replay_by_other.status_code == 409
    _assert_error(replay_by_other.json(), "request_id_conflict")


def test_a_job_published_straight_to_kafka_is_visible_to_admins_only(
    shared_gateway: Gateway,
) -> None:
    JobStore(shared_gateway.container.jobs.engine).record_predictions(
        [
            Prediction(
                request_id="kafka-direct-1",
                model="iris",
                version=1,
                variant="production",
                status="ok",
                output=ClassifierOutput(label="setosa", probabilities={"setosa": 1.0}),
                latency_ms=1.0,
            )
        ]
    )

    by_role = {
        role: shared_gateway.call("GET", "/v1/jobs/kafka-direct-1", role=role)
        for role in ("client", "reader", "publisher", "approver", "admin")
    }

    assert by_role.pop("admin").json()["owner"] is None
    for role, response in by_role.items():
        assert response.status_code == 404, (role, response.text)
        _assert_error(response.json(), "unknown_job")


def test_a_revoked_key_is_refused_once_the_auth_cache_lapses(
    start_gateway: StartGateway, stack: Stack
) -> None:
    with RegistryClient(stack.registry.url, stack.registry.keys["admin"]) as admin:
        token = admin.create_api_key("revoked-at-the-gateway", "client")
        with start_gateway(auth_cache_seconds=1.0) as gateway:
            headers = {"Authorization": f"Bearer {token}"}
            before = gateway.call("GET", "/v1/jobs/x", role=None, headers=headers)
            admin.revoke_api_key("revoked-at-the-gateway")
            revoked_at = time.monotonic()
            deadline = revoked_at + 10
            while (
                status := gateway.call("GET", "/v1/jobs/x", role=None, headers=headers).status_code
            ) == 404:
                assert time.monotonic() < deadline, "the revoked key was never refused"
                time.sleep(0.05)
            refused_after = time.monotonic() - revoked_at

    assert before.status_code == 404  # accepted: no such job
    assert status == 401
    assert refused_after <= 1.0 + 0.5  # within the cache lifetime (plus a poll)


def test_failed_attempts_of_one_address_get_429_before_the_registry_is_asked(
    start_gateway: StartGateway,
) -> None:
    with start_gateway(auth_failures_per_second=0.2, auth_failures_burst=3) as gateway:
        authenticator = gateway.container.authenticator
        calls = authenticator.registry_calls
        failures = [
            gateway.call(
                "GET", "/v1/jobs/x", role=None, headers={"Authorization": f"Bearer bad-{i}"}
            )
            for i in range(3)
        ]
        asked = authenticator.registry_calls - calls
        limited = gateway.call(
            "GET", "/v1/jobs/x", role=None, headers={"Authorization": "Bearer bad-new"}
        )
        without_key = gateway.call("GET", "/v1/jobs/x", role=None)

        assert [response.status_code for response in failures] == [401, 401, 401]
        assert asked == 3
        for response in (limited, without_key):
            assert response.status_code == 429, response.text
            _assert_error(response.json(), "rate_limited")
            assert 1 <= int(response.headers["Retry-After"]) <= 5
        assert authenticator.registry_calls - calls == 3  # the new key was never checked


def test_an_x_api_key_header_works_and_a_known_key_is_checked_once(
    shared_gateway: Gateway,
) -> None:
    authenticator = shared_gateway.container.authenticator
    headers = {"X-API-Key": shared_gateway.keys["publisher"]}
    shared_gateway.call("GET", "/v1/jobs/warm-up", role=None, headers=headers)
    calls = authenticator.registry_calls

    answers = [
        shared_gateway.call("GET", f"/v1/jobs/x{i}", role=None, headers=headers) for i in range(3)
    ]

    assert [response.status_code for response in answers] == [404, 404, 404]
    assert authenticator.registry_calls == calls


@pytest.fixture
def limited(start_gateway: StartGateway) -> Iterator[Gateway]:
    with start_gateway(rate_limit_per_second=0.2, rate_limit_burst=3) as gateway:
        yield gateway


def test_over_the_burst_a_key_gets_429_with_retry_after(limited: Gateway) -> None:
    answers = [limited.call("GET", f"/v1/jobs/r{i}") for i in range(3)]
    refused = limited.call("GET", "/v1/jobs/r3")
    refused_predict = limited.predict("iris", {"inputs": IRIS_INPUTS})
    other_key = limited.call("GET", "/v1/jobs/r4", role="publisher")

    assert [response.status_code for response in answers] == [404, 404, 404]
    for response in (refused, refused_predict):
        assert response.status_code == 429, response.text
        assert 1 <= int(response.headers["Retry-After"]) <= 5  # 1 token at 0.2/s
        _assert_error(response.json(), "rate_limited")
        assert "reader-key" in response.json()["error"]["message"]
    assert other_key.status_code == 404  # each key has its own bucket


def test_the_bucket_refills_over_time(start_gateway: StartGateway) -> None:
    with start_gateway(rate_limit_per_second=2.0, rate_limit_burst=1) as gateway:
        assert gateway.call("GET", "/v1/jobs/a").status_code == 404
        assert gateway.call("GET", "/v1/jobs/b").status_code == 429
        deadline = time.monotonic() + 5
        while (status := gateway.call("GET", "/v1/jobs/c").status_code) == 429:
            assert time.monotonic() < deadline, "the bucket never refilled"
            time.sleep(0.02)

    assert status == 404


def test_an_oversized_body_is_413(shared_gateway: Gateway) -> None:
    limit = shared_gateway.settings.max_body_bytes
    inputs = IRIS_INPUTS | {"padding": "x" * limit}

    response = shared_gateway.predict("iris", {"inputs": inputs})

    assert response.status_code == 413
    _assert_error(response.json(), "payload_too_large")
    assert str(limit) in response.json()["error"]["message"]


def test_an_oversized_streamed_body_is_413_too(shared_gateway: Gateway) -> None:
    """No Content-Length: the limit is enforced while the body arrives."""
    limit = shared_gateway.settings.max_body_bytes
    payload = json.dumps({"inputs": IRIS_INPUTS | {"padding": "x" * limit}}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    response = shared_gateway.call(
        "POST",
        "/v1/models/iris/predict",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413, response.text
    _assert_error(response.json(), "payload_too_large")


def test_health_and_readiness(shared_gateway: Gateway) -> None:
    assert shared_gateway.call("GET", "/healthz", role=None).json() == {"status": "ok"}
    ready = shared_gateway.call("GET", "/readyz", role=None)

    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "kafka": True,
        "job_store": True,
        "model_events": "listening",
    }


def test_an_unknown_route_has_the_error_body_too(shared_gateway: Gateway) -> None:
    response = shared_gateway.call("GET", "/v1/nothing-here")

    assert response.status_code == 404
    _assert_error(response.json(), "not_found")


def test_an_unreachable_registry_is_503_with_retry_after(start_gateway: StartGateway) -> None:
    with start_gateway(registry_url=f"http://127.0.0.1:{free_port()}") as gateway:
        response = gateway.predict("iris", {"inputs": IRIS_INPUTS})

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    _assert_error(response.json(), "unavailable")
    assert "registry did not answer" in response.json()["error"]["message"]


def test_without_kafka_the_gateway_is_not_ready_and_queues_nothing(
    start_gateway: StartGateway,
) -> None:
    dead_broker = f"127.0.0.1:{free_port()}"
    with start_gateway(kafka_bootstrap=dead_broker, wait_ready=False) as gateway:
        ready = gateway.call("GET", "/readyz", role=None)
        response = gateway.predict("iris", {"request_id": "no-kafka", "inputs": IRIS_INPUTS})
        job = gateway.call("GET", "/v1/jobs/no-kafka")

    assert ready.status_code == 503
    _assert_error(ready.json(), "not_ready")
    assert ready.json()["error"]["details"]["kafka"] is False
    assert ready.json()["error"]["details"]["job_store"] is True
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert "Kafka" in response.json()["error"]["message"]
    assert job.status_code == 404  # the pending record was undone, so a retry will publish


def test_replicas_with_database_rate_limits_share_each_keys_bucket(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    shared = {
        "rate_limit_scope": "database",
        "rate_limit_per_second": 0.2,
        "rate_limit_burst": 3,
        "jobs_database_url": f"sqlite:///{tmp_path / 'shared-jobs.db'}",
    }
    with start_gateway(**shared) as first, start_gateway(**shared) as second:
        replicas = [first, second]
        answers = [replicas[i % 2].call("GET", f"/v1/jobs/s{i}") for i in range(3)]
        refused = [replica.call("GET", "/v1/jobs/s3") for replica in replicas]
        other_key = second.call("GET", "/v1/jobs/s4", role="publisher")

    assert [response.status_code for response in answers] == [404, 404, 404]
    for response in refused:
        assert response.status_code == 429, response.text
        assert 1 <= int(response.headers["Retry-After"]) <= 5
        _assert_error(response.json(), "rate_limited")
    assert other_key.status_code == 404
