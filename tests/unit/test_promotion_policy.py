"""Promotion needs a human approval unless the model's guardrail explicitly allows it."""

from __future__ import annotations

from services.registry.domain.policy import PromotionPolicy, decide_promotion
from services.registry.domain.roles import Role

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


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.includes(Role.APPROVER)
    assert Role.APPROVER.includes(Role.PUBLISHER)
    assert not Role.PUBLISHER.includes(Role.APPROVER)
    assert not Role.READER.includes(Role.PUBLISHER)
