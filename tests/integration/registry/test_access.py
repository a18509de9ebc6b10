"""Keys: a client role, owners, revocation and expiry, and a limit on failed attempts."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devtools.sample_models import iris_classifier
from services.registry.bootstrap import create_app
from services.registry.settings import RegistrySettings
from tests.integration.registry.conftest import ADMIN_KEY, Registry

pytestmark = [pytest.mark.kafka]
IRIS = iris_classifier()


def _issue(registry: Registry, **body: object) -> dict[str, object]:
    response = registry.call("admin", "POST", "/v1/api-keys", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _as(key: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_client_key_reads_no_artifact_training_data_or_model(registry: Registry) -> None:
    registry.create_model("iris")
    version = registry.register("iris", IRIS.artifact, IRIS.dataset).json()

    answers = {
        path: registry.call("client", "GET", path)
        for path in (
            version["artifact"]["url"],
            version["dataset"]["content_url"],
            version["profile_url"],
            "/v1/models/iris/versions/1",
            "/v1/models",
        )
    }
    whoami = registry.call("client", "GET", "/v1/whoami")
    by_reader = registry.call("reader", "GET", version["artifact"]["url"])

    for path, response in answers.items():
        assert response.status_code == 403, (path, response.text)
        assert "needs the reader role" in response.json()["error"]["message"]
    assert whoami.json()["role"] == "client"
    assert by_reader.status_code == 200


def test_a_reviewer_key_authenticates_with_its_role_reads_and_does_not_publish(
    registry: Registry,
) -> None:
    issued = _issue(registry, name="labeller", role="reviewer", owner="review-team")
    registry.create_model("iris")

    whoami = registry.client.get("/v1/whoami", headers=_as(issued["key"]))
    read = registry.client.get("/v1/models/iris", headers=_as(issued["key"]))
    publish = registry.client.post(
        "/v1/models", json={"name": "other", "task": "regression"}, headers=_as(issued["key"])
    )

    assert issued["role"] == "reviewer"
    assert whoami.json() == {"name": "labeller", "role": "reviewer", "owner": "review-team"}
    assert read.status_code == 200, read.text
    assert publish.status_code == 403
    assert "needs the publisher role; key 'labeller' has reviewer" in publish.text


def test_a_revoked_key_is_refused_at_once(registry: Registry) -> None:
    token = _issue(registry, name="short-lived", role="reader")["key"]
    assert registry.client.get("/v1/whoami", headers=_as(token)).status_code == 200

    revoked = registry.call("admin", "DELETE", "/v1/api-keys/short-lived")
    after = registry.client.get("/v1/whoami", headers=_as(token))
    listed = {row["name"]: row for row in registry.call("admin", "GET", "/v1/api-keys").json()}

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert after.status_code == 401
    assert "revoked" in after.json()["error"]["message"]
    assert listed["short-lived"]["revoked_at"] is not None
    assert "key" not in listed["short-lived"]
    assert registry.call("reader", "DELETE", "/v1/api-keys/publisher-key").status_code == 403
    assert registry.call("admin", "DELETE", "/v1/api-keys/nobody").status_code == 404


def test_a_key_stops_working_when_it_expires(registry: Registry) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=2)
    issued = _issue(registry, name="expiring", role="reader", expires_at=expires.isoformat())
    with_ttl = _issue(registry, name="with-ttl", role="client", ttl_seconds=3600)
    past = registry.call(
        "admin",
        "POST",
        "/v1/api-keys",
        json={"name": "past", "role": "reader", "expires_at": "2020-01-01T00:00:00Z"},
    )

    assert registry.client.get("/v1/whoami", headers=_as(issued["key"])).status_code == 200
    deadline = time.monotonic() + 10
    while registry.client.get("/v1/whoami", headers=_as(issued["key"])).status_code == 200:
        assert time.monotonic() < deadline, "the key never expired"
        time.sleep(0.2)
    assert registry.client.get("/v1/whoami", headers=_as(issued["key"])).status_code == 401
    ttl_expiry = datetime.fromisoformat(str(with_ttl["expires_at"]))
    assert timedelta(minutes=59) < ttl_expiry - datetime.now(UTC) <= timedelta(hours=1)
    assert past.status_code == 422
    assert "already past" in past.json()["error"]["message"]


def test_two_keys_of_one_owner_cannot_approve_each_others_versions(registry: Registry) -> None:
    publisher = _issue(registry, name="alice-ci", role="publisher", owner="alice")["key"]
    approver = _issue(registry, name="alice-laptop", role="approver", owner="alice")["key"]
    registry.create_model("iris")
    registered = registry.client.post(
        "/v1/models/iris/versions",
        headers=_as(publisher),
        files={
            "artifact": ("model.skops", IRIS.artifact, "application/octet-stream"),
            "dataset": ("train.csv", IRIS.dataset, "text/csv"),
        },
        data={"metadata": '{"code_version": "3f2c1ab"}'},
    )
    assert registered.status_code == 201, registered.text
    decision = {"decision": "approve", "reason": "looks good"}

    own = registry.client.post(
        "/v1/models/iris/versions/1/approvals", headers=_as(approver), json=decision
    )
    other = registry.call("approver", "POST", "/v1/models/iris/versions/1/approvals", json=decision)

    assert own.status_code == 403, own.text
    assert "alice" in own.json()["error"]["message"]
    assert other.status_code == 201, other.text


def test_failed_authentications_are_limited_per_address(tmp_path: Path) -> None:
    settings = RegistrySettings(
        database_url=f"sqlite:///{tmp_path / 'registry.db'}",
        artifact_dir=tmp_path / "blobs",
        admin_api_key=ADMIN_KEY,  # type: ignore[arg-type]
        publish_events=False,
        auth_failures_per_second=0.5,
        auth_failures_burst=3,
    )
    with TestClient(create_app(settings)) as client:
        failures = [
            client.get("/v1/whoami", headers=_as(f"wrong-{i}")).status_code for i in range(3)
        ]
        limited = client.get("/v1/whoami", headers=_as("wrong-3"))
        valid_meanwhile = client.get("/v1/whoami", headers=_as(ADMIN_KEY))

    assert failures == [401, 401, 401]
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    assert valid_meanwhile.status_code == 429  # refused before any lookup


def test_no_key_is_issued_when_its_webhook_secret_cannot_be_stored(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    settings = RegistrySettings(
        database_url=f"sqlite:///{tmp_path / 'registry.db'}",
        artifact_dir=tmp_path / "blobs",
        admin_api_key=ADMIN_KEY,  # type: ignore[arg-type]
        publish_events=False,
        jobs_database_url=f"sqlite:///{jobs_dir / 'jobs.db'}",
    )
    with TestClient(create_app(settings), headers=_as(ADMIN_KEY)) as client:
        issued = client.post("/v1/api-keys", json={"name": "with-secret", "role": "client"})
        with sqlite3.connect(jobs_dir / "jobs.db") as jobs:  # the secrets can no longer be kept
            jobs.execute("DROP TABLE webhook_secrets")
        refused = client.post("/v1/api-keys", json={"name": "without", "role": "client"})
        names = [row["name"] for row in client.get("/v1/api-keys").json()]

    assert issued.status_code == 201 and issued.json()["webhook_secret"].startswith("whsec_")
    assert refused.status_code == 503, refused.text
    assert "no key was issued" in refused.json()["error"]["message"]
    assert "without" not in names and "with-secret" in names
