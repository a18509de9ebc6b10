"""A model's feedback policy: stored with the model, validated, set by approvers, audited."""

from __future__ import annotations

from typing import Any

import pytest

from shared.feedback_policy import FeedbackPolicy
from tests.integration.registry.conftest import Registry

pytestmark = [pytest.mark.kafka]

STRICT = {
    "ratings": {"up": "confirms", "down": "weakly_refutes"},
    "review": {"random_share": 0.05, "low_margin": 0.2, "negative_rating": True},
}


def _audit(registry: Registry, action: str, model: str = "iris") -> list[dict[str, Any]]:
    params = {"model": model, "action": action}
    response = registry.call("reader", "GET", "/v1/audit", params=params)
    assert response.status_code == 200, response.text
    return list(response.json())


def test_a_model_without_a_policy_shows_the_default(registry: Registry) -> None:
    registry.create_model("iris")

    shown = registry.call("reader", "GET", "/v1/models/iris").json()["feedback"]
    listed = registry.call("reader", "GET", "/v1/models").json()[0]["feedback"]

    assert shown == listed == FeedbackPolicy().model_dump(mode="json")
    assert shown["ratings"] == {"up": "confirms", "down": "refutes"}
    assert shown["train_on_weak"] is False


def test_an_approver_sets_the_policy_and_the_change_is_audited(registry: Registry) -> None:
    registry.create_model("iris")

    changed = registry.call(
        "approver", "PATCH", "/v1/models/iris", json={"feedback": STRICT, "reason": "noisy raters"}
    )
    shown = registry.call("reader", "GET", "/v1/models/iris").json()["feedback"]
    records = _audit(registry, "model.updated")

    assert changed.status_code == 200, changed.text
    assert shown == changed.json()["feedback"]
    assert shown["ratings"]["down"] == "weakly_refutes"
    assert shown["review"]["random_share"] == 0.05 and shown["review"]["low_margin"] == 0.2
    assert shown["signals"]["copied"] == "weakly_confirms"  # unset parts keep their defaults
    assert len(records) == 1
    assert records[0]["actor"] == "approver-key" and records[0]["reason"] == "noisy raters"
    assert records[0]["details"]["feedback"]["from"] is None
    assert records[0]["details"]["feedback"]["to"] == shown


def test_a_publisher_may_not_change_the_policy(registry: Registry) -> None:
    registry.create_model("iris")

    refused = registry.call("publisher", "PATCH", "/v1/models/iris", json={"feedback": STRICT})

    assert refused.status_code == 403, refused.text
    assert "changing a model's feedback policy needs the approver role" in refused.text
    assert (
        registry.call("reader", "GET", "/v1/models/iris").json()["feedback"]["review"][
            "random_share"
        ]
        == 0.0
    )
    assert _audit(registry, "model.updated") == []


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"review": {"random_share": 1.5}}, "body.feedback.review.random_share"),
        ({"ratings": {"up": "maybe"}}, "body.feedback.ratings.up"),
        ({"signals": {"hovered": "ignored"}}, "body.feedback.signals.hovered"),
        ({"train_on_weak": True, "surprise": 1}, "body.feedback.surprise"),
    ],
)
def test_an_invalid_policy_is_422_naming_the_field(
    registry: Registry, policy: dict[str, Any], field: str
) -> None:
    registry.create_model("iris")

    refused = registry.call("approver", "PATCH", "/v1/models/iris", json={"feedback": policy})
    at_creation = registry.call(
        "approver",
        "POST",
        "/v1/models",
        json={"name": "other", "task": "classification", "feedback": policy},
    )

    for response in (refused, at_creation):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert field in error["message"]
        assert any(problem["field"].startswith(field) for problem in error["details"])


def test_the_policy_is_set_at_registration_weak_training_by_an_approver_only(
    registry: Registry,
) -> None:
    body = {"name": "iris", "task": "classification", "feedback": STRICT}
    created = registry.call("publisher", "POST", "/v1/models", json=body)
    weak = {"name": "loose", "task": "classification", "feedback": {"train_on_weak": True}}
    by_publisher = registry.call("publisher", "POST", "/v1/models", json=weak)
    by_approver = registry.call("approver", "POST", "/v1/models", json=weak)
    registered = _audit(registry, "model.registered")

    assert created.status_code == 201, created.text
    assert created.json()["feedback"]["review"]["low_margin"] == 0.2
    assert registered[0]["details"]["feedback"] == created.json()["feedback"]
    assert by_publisher.status_code == 403
    assert "needs the approver role" in by_publisher.text
    assert by_approver.status_code == 201 and by_approver.json()["feedback"]["train_on_weak"]


def test_a_margin_rule_on_a_regressor_is_refused(registry: Registry) -> None:
    registry.create_model("prices", task="regression")

    body = {"feedback": {"review": {"low_margin": 0.1}}}
    refused = registry.call("approver", "PATCH", "/v1/models/prices", json=body)

    assert refused.status_code == 422, refused.text
    assert "feedback.review.low_margin" in refused.json()["error"]["message"]
    assert "regression" in refused.json()["error"]["message"]
