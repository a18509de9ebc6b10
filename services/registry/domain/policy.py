"""Promotion policy: when a version may become production."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class PromotionPolicy(BaseModel):
    """Per-model rules for promotion to production."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auto_promote: bool = Field(
        default=False,
        description="Allow promotion without a human approval when the guardrail holds.",
    )
    guard_metric: str | None = Field(
        default=None, description="Metric the guardrail compares, e.g. accuracy."
    )
    higher_is_better: bool = True
    min_improvement: float = Field(
        default=0.0, description="How much better than production the candidate must be."
    )
    min_value: float | None = Field(
        default=None, description="Floor the metric must reach when nothing serves yet."
    )


@dataclass(frozen=True)
class PromotionDecision:
    allowed: bool
    reason: str


def decide_promotion(
    policy: PromotionPolicy,
    *,
    approved: bool,
    rejected: bool,
    candidate_metrics: Mapping[str, float],
    production_metrics: Mapping[str, float] | None,
) -> PromotionDecision:
    """Human approval always suffices; otherwise only a guardrail the policy opted into."""
    if rejected:
        return PromotionDecision(False, "the version was rejected by an approver")
    if approved:
        return PromotionDecision(True, "approved by an approver")
    if not policy.auto_promote:
        return PromotionDecision(
            False, "promotion needs an approval by an approver (the policy has no auto-promote)"
        )
    metric = policy.guard_metric
    if metric is None:
        return PromotionDecision(False, "auto-promote is on but the policy names no guard_metric")
    if metric not in candidate_metrics:
        return PromotionDecision(False, f"the candidate has no metric {metric!r}")
    candidate = candidate_metrics[metric]
    sign = 1.0 if policy.higher_is_better else -1.0
    if production_metrics is None:
        if policy.min_value is None:
            return PromotionDecision(
                False, "nothing serves yet and the policy sets no min_value for auto-promote"
            )
        if sign * (candidate - policy.min_value) < 0:
            return PromotionDecision(
                False,
                f"{metric} {candidate:g} does not reach the policy floor {policy.min_value:g}",
            )
        return PromotionDecision(True, f"{metric} {candidate:g} reaches the floor")
    if metric not in production_metrics:
        return PromotionDecision(False, f"production has no metric {metric!r} to compare with")
    baseline = production_metrics[metric]
    improvement = sign * (candidate - baseline)
    if improvement < policy.min_improvement:
        return PromotionDecision(
            False,
            f"{metric} {candidate:g} vs production {baseline:g}: improvement {improvement:g} "
            f"is below the required {policy.min_improvement:g}",
        )
    return PromotionDecision(
        True, f"{metric} {candidate:g} vs production {baseline:g} passes the guardrail"
    )
