"""Promotion policy: when a version may become production, or serve any live traffic."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from shared.roles import Role


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
        default=0.0,
        allow_inf_nan=False,
        description="How much better than production the candidate must be.",
    )
    min_value: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Floor the metric must reach when nothing serves yet.",
    )

    @property
    def needs_approval(self) -> bool:
        """Whether only a human approval lets a version serve (no automatic promotion)."""
        return not self.auto_promote


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
    if not math.isfinite(candidate):
        return PromotionDecision(False, f"the candidate's {metric} is {candidate}, not a number")
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
    if not math.isfinite(baseline):
        return PromotionDecision(False, f"production's {metric} is {baseline}, not a number")
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


def decide_live_trial(
    policy: PromotionPolicy, *, approved: bool, rejected: bool, trial: str
) -> PromotionDecision:
    """Whether a version may take live traffic as a canary or shadow (`trial` names which).

    A rejected version never does; under a policy that needs approval, only an approved one
    does, just as for a promotion. Auto-promote policies let unapproved versions be tried,
    since trying them is how the guardrail's evidence is gathered.
    """
    if rejected:
        return PromotionDecision(False, "the version was rejected by an approver")
    if approved:
        return PromotionDecision(True, "approved by an approver")
    if policy.needs_approval:
        return PromotionDecision(
            False,
            f"serving as a {trial} needs an approval by an approver "
            "(the policy has no auto-promote)",
        )
    return PromotionDecision(True, f"the policy's auto-promote allows a {trial}")


def role_for_canary(weight: float, *, max_unreviewed_weight: float) -> Role:
    """A canary above the configured share of traffic needs an approver, not a publisher."""
    return Role.APPROVER if weight > max_unreviewed_weight else Role.PUBLISHER


def role_for_routing_change(policy: PromotionPolicy) -> Role:
    """Routing decides which versions answer, so under an approval policy an approver sets it."""
    return Role.APPROVER if policy.needs_approval else Role.PUBLISHER


def role_for_new_policy(policy: PromotionPolicy) -> Role:
    """Registering a model with automatic promotion is loosening the default: approver only."""
    return Role.APPROVER if policy.auto_promote else Role.PUBLISHER
