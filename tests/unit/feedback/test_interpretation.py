"""Feedback becomes evidence about a label under each model's policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.feedback.domain.interpretation import Evidence, interpret
from shared.contracts.feedback import Feedback
from shared.feedback_policy import FeedbackPolicy

BINARY = ["churn", "stay"]
IRIS = ["setosa", "versicolor", "virginica"]
POLICY = FeedbackPolicy()


def _feedback(**kind: object) -> Feedback:
    return Feedback(request_id="r-1", source="app", **kind)  # type: ignore[arg-type]


def test_an_explicit_label_is_ground_truth_whatever_was_predicted() -> None:
    evidence = interpret(
        _feedback(label="virginica"), predicted="setosa", classes=IRIS, policy=POLICY
    )

    assert evidence == Evidence(label="virginica", strength="label")


def test_thumbs_up_confirms_and_thumbs_down_names_the_other_class_of_two() -> None:
    up = interpret(_feedback(rating="up"), predicted="churn", classes=BINARY, policy=POLICY)
    down = interpret(_feedback(rating="down"), predicted="churn", classes=BINARY, policy=POLICY)

    assert up == Evidence(label="churn", strength="label")
    assert down == Evidence(label="stay", strength="label", refuted="churn")


def test_thumbs_down_among_many_classes_only_rules_the_prediction_out() -> None:
    down = interpret(_feedback(rating="down"), predicted="setosa", classes=IRIS, policy=POLICY)
    regression = interpret(_feedback(rating="down"), predicted=12.5, classes=None, policy=POLICY)

    assert down == Evidence(label=None, strength="label", refuted="setosa")
    assert regression == Evidence(label=None, strength="label", refuted=12.5)


def test_implicit_signals_are_weak_or_ignored_by_default() -> None:
    copied = interpret(_feedback(signal="copied"), predicted="stay", classes=BINARY, policy=POLICY)
    edited = interpret(_feedback(signal="edited"), predicted="stay", classes=BINARY, policy=POLICY)
    abandoned = interpret(
        _feedback(signal="abandoned"), predicted="stay", classes=BINARY, policy=POLICY
    )

    assert copied == Evidence(label="stay", strength="weak")
    assert edited == Evidence(label="churn", strength="weak", refuted="stay")
    assert abandoned is None


def test_the_policy_is_configuration_per_model() -> None:
    strict = FeedbackPolicy.model_validate(
        {"ratings": {"up": "weakly_confirms", "down": "ignored"}, "signals": {}}
    )

    up = interpret(_feedback(rating="up"), predicted="stay", classes=BINARY, policy=strict)
    down = interpret(_feedback(rating="down"), predicted="stay", classes=BINARY, policy=strict)
    copied = interpret(_feedback(signal="copied"), predicted="stay", classes=BINARY, policy=strict)

    assert up == Evidence(label="stay", strength="weak")
    assert down is None
    assert copied is None


def test_an_error_prediction_has_nothing_to_confirm() -> None:
    assert interpret(_feedback(rating="up"), predicted=None, classes=BINARY, policy=POLICY) is None


def test_a_policy_with_unknown_kinds_or_meanings_is_refused() -> None:
    with pytest.raises(ValidationError):
        FeedbackPolicy.model_validate({"ratings": {"sideways": "confirms"}})
    with pytest.raises(ValidationError):
        FeedbackPolicy.model_validate({"signals": {"copied": "proves"}})
