"""What a batch brings to the join, and where each model's feedback policy comes from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.contracts import Feedback
from shared.feedback_policy import FeedbackPolicy


class PolicySource(Protocol):
    """Each model's feedback policy (kept in the registry); called from the store's thread."""

    def policy_for(self, model: str) -> FeedbackPolicy: ...


class DefaultPolicies:
    """Every model under the default policy (no registry configured)."""

    def __init__(self) -> None:
        self._policy = FeedbackPolicy()

    def policy_for(self, model: str) -> FeedbackPolicy:
        return self._policy


@dataclass
class Batch:
    """What a batch of records adds to the store, already decoded and checked."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    margins: dict[str, float] = field(default_factory=dict)
    """How far each served classification's top class led the runner-up, by request id."""
    received_at: float = 0.0
