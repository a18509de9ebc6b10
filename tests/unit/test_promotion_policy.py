"""Promotion needs a human approval unless the model's guardrail explicitly allows it."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from services.registry.domain.policy import (
    PromotionPolicy,
    decide_live_trial,
    decide_promotion,
    role_for_canary,
    role_for_new_policy,
    role_for_routing_change,
)
from shared.roles import Role

GUARDED = PromotionPolicy(auto_promote=True, guard_metric="accuracy", min_improvement=0.01)


def _decide(policy: PromotionPolicy, **kwargs: object):  # type: ignore[no-untyped-def]
    arguments: dict[str, object] = {
        "approved": False,
        "rejected": False,
        "candidate_metrics": {"accuracy": 0.95},
        "production_metrics": {"accuracy": 0.90},
    }
    return decide_promotion(policy, **(arguments | kwargs))  # type: ignore[arg-type]


def test_default_policy_needs_approval() -> None:
    decision = _decide(PromotionPolicy())
    assert not decision.allowed and "needs an approval" in decision.reason
    assert _decide(PromotionPolicy(), approved=True).allowed


def test_rejection_wins_over_everything() -> None:
    assert not _decide(GUARDED, rejected=True, approved=True).allowed


def test_guardrail_allows_a_clear_improvement_only() -> None:
    assert _decide(GUARDED).allowed
    small = _decide(GUARDED, candidate_metrics={"accuracy": 0.905})
    assert not small.allowed and "below the required" in small.reason


def test_guardrail_lower_is_better() -> None:
    policy = PromotionPolicy(auto_promote=True, guard_metric="rmse", higher_is_better=False)
    assert _decide(
        policy, candidate_metrics={"rmse": 1.0}, production_metrics={"rmse": 2.0}
    ).allowed
    assert not _decide(
        policy, candidate_metrics={"rmse": 3.0}, production_metrics={"rmse": 2.0}
    ).allowed


def test_guardrail_needs_the_metric_and_a_floor_for_the_first_version() -> None:
    assert "no metric" in _decide(GUARDED, candidate_metrics={}).reason
    first = _decide(GUARDED, production_metrics=None)
    assert not first.allowed and "min_value" in first.reason
    floored = GUARDED.model_copy(update={"min_value": 0.9})
    assert _decide(floored, production_metrics=None).allowed
    assert not _decide(
        floored, production_metrics=None, candidate_metrics={"accuracy": 0.5}
    ).allowed


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_metric_that_is_not_a_finite_number_never_passes_the_guardrail(bad: float) -> None:
    candidate = _decide(GUARDED, candidate_metrics={"accuracy": bad})
    assert not candidate.allowed and "not a number" in candidate.reason
    baseline = _decide(GUARDED, production_metrics={"accuracy": bad})
    assert not baseline.allowed and "not a number" in baseline.reason
    floored = GUARDED.model_copy(update={"min_value": 0.9})
    first = _decide(floored, production_metrics=None, candidate_metrics={"accuracy": bad})
    assert not first.allowed


@pytest.mark.parametrize("field", ["min_improvement", "min_value"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_policy_numbers_must_be_finite(field: str, bad: float) -> None:
    with pytest.raises(ValidationError, match="finite"):
        PromotionPolicy.model_validate({"auto_promote": True, field: bad})


def test_canary_and_shadow_need_the_same_consent_as_a_promotion() -> None:
    strict = PromotionPolicy()
    refused = decide_live_trial(strict, approved=False, rejected=False, trial="canary")
    assert not refused.allowed and "needs an approval" in refused.reason
    assert decide_live_trial(strict, approved=True, rejected=False, trial="shadow").allowed
    assert decide_live_trial(GUARDED, approved=False, rejected=False, trial="canary").allowed
    for policy in (strict, GUARDED):
        rejected = decide_live_trial(policy, approved=False, rejected=True, trial="shadow")
        assert not rejected.allowed and "rejected" in rejected.reason


def test_roles_for_big_canaries_routing_and_loose_policies() -> None:
    assert role_for_canary(0.5, max_unreviewed_weight=0.5) is Role.PUBLISHER
    assert role_for_canary(0.51, max_unreviewed_weight=0.5) is Role.APPROVER
    assert role_for_routing_change(PromotionPolicy()) is Role.APPROVER
    assert role_for_routing_change(GUARDED) is Role.PUBLISHER
    assert role_for_new_policy(PromotionPolicy(guard_metric="accuracy")) is Role.PUBLISHER
    assert role_for_new_policy(GUARDED) is Role.APPROVER
