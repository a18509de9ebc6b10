"""Approval, promotion, canary, shadow, rollback, audit and model-events, end to end."""

from __future__ import annotations

import pytest

from devtools.sample_models import iris_classifier
from shared.contracts import ModelEvent
from shared.kafka.codec import decode
from shared.topics import MODEL_EVENTS
from tests.integration.registry.conftest import Registry
from tests.support.topic_reader import read_records_sync

pytestmark = [pytest.mark.kafka]


def _three_versions(registry: Registry) -> None:
    registry.create_model("iris")
    for c in (1.0, 0.5, 0.1):
        sample = iris_classifier(c=c)
        response = registry.register(
            "iris", sample.artifact, sample.dataset, metrics={"accuracy": sample.score}
        )
        assert response.status_code == 201, response.text


def _approve(registry: Registry, version: int) -> None:
    response = registry.call(
        "approver",
        "POST",
        f"/v1/models/iris/versions/{version}/approvals",
        json={"decision": "approve", "reason": "offline metrics reviewed"},
    )
    assert response.status_code == 201, response.text


def _deployment(registry: Registry) -> dict[str, object]:
    return dict(registry.call("reader", "GET", "/v1/models/iris/deployment").json())


def test_promotion_needs_approval_and_rollback_is_one_call(registry: Registry) -> None:
    _three_versions(registry)
    promote = {"version": 1, "reason": "first release"}
    refused = registry.call(
        "publisher", "POST", "/v1/models/iris/deployment/production", json=promote
    )
    assert refused.status_code == 403 and "needs an approval" in refused.json()["error"]["message"]
    assert _deployment(registry)["production"] is None

    not_approver = registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/versions/1/approvals",
        json={"decision": "approve", "reason": "mine"},
    )
    assert not_approver.status_code == 403
    _approve(registry, 1)
    _approve(registry, 2)
    _approve(registry, 3)
    ok = registry.call("publisher", "POST", "/v1/models/iris/deployment/production", json=promote)
    assert ok.status_code == 200, ok.text
    assert ok.json()["production"] == 1

    canary = registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/deployment/canary",
        json={"version": 2, "weight": 0.2, "reason": "try C=0.5"},
    )
    assert canary.json()["canary"] == 2 and canary.json()["canary_weight"] == 0.2
    shadow = registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/deployment/shadow",
        json={"version": 3, "reason": "watch C=0.1"},
    )
    assert shadow.json()["shadow"] == 3
    promoted = registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/deployment/production",
        json={"version": 2, "reason": "canary healthy"},
    ).json()
    assert (promoted["production"], promoted["canary"], promoted["shadow"]) == (2, None, 3)

    rolled = registry.call(
        "publisher", "POST", "/v1/models/iris/rollback", json={"reason": "p99 regressed"}
    )
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["production"] == 1
    nothing_left = registry.call(
        "publisher", "POST", "/v1/models/iris/rollback", json={"reason": "again"}
    )
    assert nothing_left.status_code == 409
    assert "no earlier one" in nothing_left.json()["error"]["message"]

    history = registry.call("reader", "GET", "/v1/models/iris/deployment/history").json()
    assert [(row["action"], row["production"]) for row in history] == [
        ("rollback", 1),
        ("promote", 2),
        ("shadow", 1),
        ("canary", 1),
        ("promote", 1),
    ]
    assert history[0]["actor"] == "publisher-key" and history[0]["reason"] == "p99 regressed"

    audit = registry.call("reader", "GET", "/v1/audit", params={"model": "iris"}).json()
    assert audit[0]["action"] == "deployment.rollback"
    assert audit[0]["actor"] == "publisher-key" and audit[0]["reason"] == "p99 regressed"
    approvals = registry.call(
        "reader", "GET", "/v1/audit", params={"action": "version.approved"}
    ).json()
    assert {row["version"] for row in approvals} == {1, 2, 3}
    assert all(row["actor"] == "approver-key" for row in approvals)

    topic = registry.settings.topic_prefix + MODEL_EVENTS.name
    expected = 1 + 3 + 3 + 5  # model, versions, approvals, deployment changes
    records = read_records_sync(registry.settings.kafka_bootstrap, topic, expected=expected)
    events = [decode(MODEL_EVENTS, record.value, record.headers) for record in records]
    assert all(isinstance(event, ModelEvent) for event in events)
    assert [event.event_type for event in events] == [
        "model.registered",
        "version.registered",
        "version.registered",
        "version.registered",
        "version.approved",
        "version.approved",
        "version.approved",
        "deployment.changed",
        "deployment.changed",
        "deployment.changed",
        "deployment.changed",
        "deployment.changed",
    ]
    last = events[-1]
    assert last.deployment is not None and last.deployment.production == 1
    assert last.actor == "publisher-key" and last.reason == "p99 regressed"
    assert all(record.key == b"iris" for record in records)


def test_rejected_version_cannot_serve(registry: Registry) -> None:
    _three_versions(registry)
    rejected = registry.call(
        "approver",
        "POST",
        "/v1/models/iris/versions/2/approvals",
        json={"decision": "reject", "reason": "overfits"},
    )
    assert rejected.status_code == 201
    version = registry.call("reader", "GET", "/v1/models/iris/versions/2").json()
    assert version["status"] == "rejected" and version["approvals"][0]["reason"] == "overfits"
    response = registry.call(
        "admin", "POST", "/v1/models/iris/deployment/production", json={"version": 2, "reason": "x"}
    )
    assert response.status_code == 403 and "rejected" in response.json()["error"]["message"]


def test_nobody_approves_their_own_version(registry: Registry) -> None:
    registry.create_model("iris")
    sample = iris_classifier()
    assert (
        registry.register("iris", sample.artifact, sample.dataset, role="approver").status_code
        == 201
    )
    own = registry.call(
        "approver",
        "POST",
        "/v1/models/iris/versions/1/approvals",
        json={"decision": "approve", "reason": "looks fine"},
    )
    assert own.status_code == 403 and "cannot also approve" in own.json()["error"]["message"]
    other = registry.call(
        "approver2",
        "POST",
        "/v1/models/iris/versions/1/approvals",
        json={"decision": "approve", "reason": "looks fine"},
    )
    assert other.status_code == 201


def test_guarded_auto_promotion(registry: Registry) -> None:
    policy = {
        "auto_promote": True,
        "guard_metric": "accuracy",
        "min_improvement": 0.0,
        "min_value": 0.8,
    }
    created = registry.call(
        "approver",
        "POST",
        "/v1/models",
        json={"name": "iris", "task": "classification", "policy": policy},
    )
    assert created.status_code == 201, created.text
    strong, weak = iris_classifier(c=1.0), iris_classifier(c=0.01)
    assert strong.score > weak.score
    registry.register("iris", strong.artifact, strong.dataset, metrics={"accuracy": strong.score})
    registry.register("iris", weak.artifact, weak.dataset, metrics={"accuracy": weak.score})
    first = registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/deployment/production",
        json={"version": 1, "reason": "auto"},
    )
    assert first.status_code == 200, first.text
    worse = registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/deployment/production",
        json={"version": 2, "reason": "auto"},
    )
    assert worse.status_code == 403 and "below the required" in worse.json()["error"]["message"]
    assert _deployment(registry)["production"] == 1


def test_policy_changes_need_an_approver(registry: Registry) -> None:
    registry.create_model("iris")
    body = {"policy": {"auto_promote": True, "guard_metric": "accuracy"}, "reason": "trust it"}
    assert registry.call("publisher", "PATCH", "/v1/models/iris", json=body).status_code == 403
    changed = registry.call("approver", "PATCH", "/v1/models/iris", json=body)
    assert changed.status_code == 200 and changed.json()["policy"]["auto_promote"] is True


def test_deployment_errors(registry: Registry) -> None:
    _three_versions(registry)
    _approve(registry, 2)
    no_production = registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/deployment/canary",
        json={"version": 2, "weight": 0.1, "reason": "r"},
    )
    assert no_production.status_code == 409
    assert "needs a production version" in no_production.json()["error"]["message"]
    bad_weight = registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/deployment/canary",
        json={"version": 2, "weight": 1.5, "reason": "r"},
    )
    assert bad_weight.status_code == 422 and "weight" in bad_weight.json()["error"]["message"]
    missing = registry.call(
        "publisher", "POST", "/v1/models/iris/deployment/shadow", json={"version": 9, "reason": "r"}
    )
    assert missing.status_code == 404 and "no version 9" in missing.json()["error"]["message"]
    no_canary = registry.call(
        "publisher", "DELETE", "/v1/models/iris/deployment/canary", params={"reason": "r"}
    )
    assert no_canary.status_code == 409
    assert _deployment(registry)["revision"] == 0
