"""Rules for a model's feedback policy: who may set it, and whether it fits the model's task."""

from __future__ import annotations

from shared.feedback_policy import FeedbackPolicy
from shared.roles import Role


def role_for_new_feedback_policy(policy: FeedbackPolicy) -> Role:
    """At registration a publisher sets the policy, unless it lets unreviewed weak signals
    become training data: that guard is an approver's to lift (as auto-promote is)."""
    return Role.APPROVER if policy.train_on_weak else Role.PUBLISHER


def feedback_policy_problem(policy: FeedbackPolicy, task: str) -> str | None:
    """Why the policy cannot apply to a model of this task, or None when it can."""
    if task != "classification" and policy.review.low_margin is not None:
        return (
            "feedback.review.low_margin: a margin between class probabilities needs a "
            f"classifier; this model is a {task}"
        )
    return None
