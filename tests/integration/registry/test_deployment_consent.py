"""Nothing serves without the policy's consent: canary, shadow, cascade routing, policies."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.sample_models import iris_classifier
from services.registry.settings import RegistrySettings
from tests.integration.registry.conftest import Registry

pytestmark = [pytest.mark.kafka]

GUARDED = {"auto_promote": True, "guard_metric": "accuracy", "min_value": 0.5}


def _versions(registry: Registry, count: int = 3, **model: Any) -> None:
    if model:
        response = registry.call(
            "approver",
            "POST",
            "/v1/models",
            json={"name": "iris", "task": "classification"} | model,
        )
        assert response.status_code == 201, response.text
    else:
        registry.create_model("iris")
    for c in (1.0, 0.5, 0.1, 0.05)[:count]:
        sample = iris_classifier(c=c)
        response = registry.register(
            "iris", sample.artifact, sample.dataset, metrics={"accuracy": sample.score}
        )
        assert response.status_code == 201, response.text


def _decide(registry: Registry, version: int, decision: str = "approve") -> None:
    response = registry.call(
        "approver",
        "POST",
        f"/v1/models/iris/versions/{version}/approvals",
        json={"decision": decision, "reason": "reviewed"},
    )
    assert response.status_code == 201, response.text


def _promote(registry: Registry, version: int) -> None:
    response = registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/deployment/production",
        json={"version": version, "reason": "release"},
    )
    assert response.status_code == 200, response.text


def _canary(registry: Registry, version: int, weight: float, role: str = "publisher") -> Any:
    return registry.call(
        role,
        "POST",
        "/v1/models/iris/deployment/canary",
        json={"version": version, "weight": weight, "reason": "try it"},
    )


def _shadow(registry: Registry, version: int) -> Any:
    return registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/deployment/shadow",
        json={"version": version, "reason": "watch it"},
    )


def _message(response: Any) -> str:
    return str(response.json()["error"]["message"])


def _deployment(registry: Registry) -> dict[str, Any]:
    return dict(registry.call("reader", "GET", "/v1/models/iris/deployment").json())


def test_canary_and_shadow_of_an_unapproved_version_are_refused_like_a_promotion(
    registry: Registry,
) -> None:
    _versions(registry)
    _decide(registry, 1)
    _promote(registry, 1)

    canary = _canary(registry, 2, 0.2)
    assert canary.status_code == 403, canary.text
    assert "version 2 may not serve as a canary" in _message(canary)
    assert "needs an approval" in _message(canary)
    shadow = _shadow(registry, 3)
    assert shadow.status_code == 403, shadow.text
    assert "version 3 may not serve as a shadow" in _message(shadow)

    _decide(registry, 2, "reject")
    rejected = _canary(registry, 2, 0.2)
    assert rejected.status_code == 403 and "rejected" in _message(rejected)
    deployment = _deployment(registry)
    assert (deployment["canary"], deployment["shadow"], deployment["revision"]) == (None, None, 1)

    _decide(registry, 3)
    assert _shadow(registry, 3).status_code == 200
    assert _canary(registry, 3, 0.2).status_code == 200


def test_auto_promote_policies_allow_trials_of_unapproved_versions_but_not_rejected_ones(
    registry: Registry,
) -> None:
    _versions(registry, policy=GUARDED)
    _promote(registry, 1)
    assert _canary(registry, 2, 0.2).status_code == 200
    assert _shadow(registry, 3).status_code == 200
    _decide(registry, 2, "reject")
    refused = _shadow(registry, 2)
    assert refused.status_code == 403 and "rejected" in _message(refused)


def test_a_canary_weight_above_the_limit_needs_an_approver(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert registry.settings.max_canary_weight == 0.5
    _versions(registry, count=2)
    _decide(registry, 1)
    _decide(registry, 2)
    _promote(registry, 1)

    big = _canary(registry, 2, 0.6)
    assert big.status_code == 403, big.text
    assert "above 0.5 (MODELBUS_MAX_CANARY_WEIGHT) needs the approver role" in _message(big)
    assert _deployment(registry)["canary"] is None
    assert _canary(registry, 2, 0.5).status_code == 200
    by_approver = _canary(registry, 2, 0.8, role="approver")
    assert by_approver.status_code == 200 and by_approver.json()["canary_weight"] == 0.8

    monkeypatch.setenv("MODELBUS_MAX_CANARY_WEIGHT", "0.2")
    assert RegistrySettings().max_canary_weight == 0.2


def test_cascade_routing_needs_an_existing_approved_small_version_and_an_approver(
    registry: Registry,
) -> None:
    _versions(registry)
    _decide(registry, 1)
    _promote(registry, 1)

    def route(role: str, routing: dict[str, Any]) -> Any:
        return registry.call(
            role, "PATCH", "/v1/models/iris", json={"routing": routing, "reason": "cheaper"}
        )

    missing = route("approver", {"cascade": {"small_version": 9, "min_confidence": 0.8}})
    assert missing.status_code == 422 and "has no version 9" in _message(missing)
    unapproved = route("approver", {"cascade": {"small_version": 2, "min_confidence": 0.8}})
    assert unapproved.status_code == 403, unapproved.text
    assert "may not answer as the cascade's small model" in _message(unapproved)
    typo = route("approver", {"cascde": {"small_version": 2, "min_confidence": 0.8}})
    assert typo.status_code == 422 and "cascde" in _message(typo)
    bad_confidence = route("approver", {"cascade": {"small_version": 2, "min_confidence": 2}})
    assert bad_confidence.status_code == 422 and "min_confidence" in _message(bad_confidence)

    _decide(registry, 2)
    cascade = {"cascade": {"small_version": 2, "min_confidence": 0.8}}
    by_publisher = route("publisher", cascade)
    assert by_publisher.status_code == 403 and "approver role" in _message(by_publisher)
    assert registry.call("reader", "GET", "/v1/models/iris").json()["routing"] == {}
    by_approver = route("approver", cascade)
    assert by_approver.status_code == 200, by_approver.text
    assert by_approver.json()["routing"] == cascade

    audit = registry.call(
        "reader", "GET", "/v1/audit", params={"model": "iris", "action": "model.updated"}
    ).json()
    assert len(audit) == 1
    assert audit[0]["actor"] == "approver-key" and audit[0]["reason"] == "cheaper"
    assert audit[0]["details"]["routing"] == {"from": {}, "to": cascade}


def test_cascade_routing_under_auto_promote_passes_the_guardrail(registry: Registry) -> None:
    _versions(registry, count=4, policy=GUARDED | {"min_improvement": 0.0})
    _promote(registry, 1)
    weak = registry.call(
        "publisher",
        "PATCH",
        "/v1/models/iris",
        json={"routing": {"cascade": {"small_version": 4, "min_confidence": 0.9}}},
    )
    assert weak.status_code == 403 and "below the required" in _message(weak)
    _decide(registry, 4)
    strong = registry.call(
        "publisher",
        "PATCH",
        "/v1/models/iris",
        json={"routing": {"cascade": {"small_version": 4, "min_confidence": 0.9}}},
    )
    assert strong.status_code == 200, strong.text


def test_a_new_model_cannot_start_with_a_cascade(registry: Registry) -> None:
    response = registry.call(
        "approver",
        "POST",
        "/v1/models",
        json={
            "name": "iris",
            "task": "classification",
            "routing": {"cascade": {"small_version": 1, "min_confidence": 0.8}},
        },
    )
    assert response.status_code == 422 and "no versions yet" in _message(response)


def test_only_an_approver_registers_a_model_with_auto_promote(registry: Registry) -> None:
    body = {"name": "iris", "task": "classification", "policy": GUARDED}
    refused = registry.call("publisher", "POST", "/v1/models", json=body)
    assert refused.status_code == 403, refused.text
    assert "auto-promote needs the approver role" in _message(refused)
    assert registry.call("reader", "GET", "/v1/models/iris").status_code == 404
    strict = {"name": "iris", "task": "classification", "policy": {"guard_metric": "accuracy"}}
    assert registry.call("publisher", "POST", "/v1/models", json=strict).status_code == 201
    loosen = registry.call(
        "publisher", "PATCH", "/v1/models/iris", json={"policy": GUARDED, "reason": "trust it"}
    )
    assert loosen.status_code == 403
    assert registry.call("approver", "POST", "/v1/models", json=body | {"name": "iris2"}).is_success


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_guardrail_numbers_must_be_finite(registry: Registry, number: str) -> None:
    json_header = {"content-type": "application/json"}
    created = registry.call(
        "approver",
        "POST",
        "/v1/models",
        content=(
            '{"name": "iris", "task": "classification", "policy": '
            f'{{"auto_promote": true, "guard_metric": "accuracy", "min_value": {number}}}}}'
        ),
        headers=json_header,
    )
    assert created.status_code == 422, created.text
    assert "min_value" in _message(created) and "finite" in _message(created)

    registry.create_model("iris")
    patched = registry.call(
        "approver",
        "PATCH",
        "/v1/models/iris",
        content=f'{{"policy": {{"min_improvement": {number}}}}}',
        headers=json_header,
    )
    assert patched.status_code == 422 and "min_improvement" in _message(patched)

    sample = iris_classifier()
    registered = registry.call(
        "publisher",
        "POST",
        "/v1/models/iris/versions",
        files={
            "artifact": ("model.skops", sample.artifact, "application/octet-stream"),
            "dataset": ("train.csv", sample.dataset, "text/csv"),
        },
        data={"metadata": f'{{"code_version": "3f2c1ab", "metrics": {{"accuracy": {number}}}}}'},
    )
    assert registered.status_code == 422, registered.text
    assert "metrics.accuracy" in _message(registered) and "finite" in _message(registered)
    assert registry.call("reader", "GET", "/v1/models/iris/versions").json() == []
