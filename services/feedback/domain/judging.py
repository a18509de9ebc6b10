"""What a request's feedback makes of each of its predictions: refusal, claim, outcome.

A label is checked against what the model can predict (a class it knows, a number for a
regressor). It then counts for every variant that answered the request: production or
canary (the answer the caller saw, which ratings and signals speak about) and the shadow,
so the shadow's live accuracy is measured on the same labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.feedback.domain.interpretation import interpret
from services.feedback.domain.resolution import (
    Authority,
    LabelClaim,
    LabelValue,
    Resolution,
    same_label,
)
from shared.contracts.feedback import Feedback
from shared.feedback_policy import FeedbackPolicy
from shared.signature import label_text

SERVED_VARIANTS = ("production", "canary")
"""Variants whose answer the caller received; a request has exactly one of them."""
AUTHORITIES = {"system": Authority.SYSTEM, "user": Authority.USER, "reviewer": Authority.REVIEWER}


@dataclass(frozen=True)
class Answer:
    """What one serving variant predicted for a request (None for an error answer)."""

    variant: str
    model: str
    version: int
    predicted: LabelValue | None
    predicted_at: float


@dataclass(frozen=True)
class Task:
    """What labels a model version accepts: its classes, or numbers (classes is None)."""

    classes: tuple[str, ...] | None

    @property
    def is_classification(self) -> bool:
        return self.classes is not None


@dataclass(frozen=True)
class Outcome:
    """The standing label as it applies to one variant's answer."""

    label: LabelValue | None
    refuted: LabelValue | None
    correct: bool | None
    abs_error: float | None


def served_answer(answers: Sequence[Answer]) -> Answer | None:
    """The answer the caller received, which its ratings and signals are about."""
    return next((answer for answer in answers if answer.variant in SERVED_VARIANTS), None)


def refusal(feedback: Feedback, task: Task) -> str | None:
    """Why an explicit label cannot be right for this model; None when it can."""
    label = feedback.label
    if label is None:
        return None
    if task.classes is not None:
        if label_text(label) not in task.classes:
            known = ", ".join(repr(name) for name in task.classes[:20])
            return f"label {label_text(label)[:64]!r} is not a class of the model ({known})"
        return None
    if isinstance(label, bool) or not isinstance(label, int | float) or not math.isfinite(label):
        return f"label {str(label)[:64]!r} is not a finite number, and the model is a regressor"
    return None


def canonical(label: LabelValue, task: Task) -> LabelValue:
    """Class labels as canonical text (as the signature lists them); values as floats."""
    if task.classes is not None:
        return label_text(label)
    return float(label)


def claim_of(
    feedback: Feedback, served: Answer, task: Task, policy: FeedbackPolicy
) -> LabelClaim | None:
    """The label claim `feedback` makes about the served answer; None if it says nothing."""
    predicted = served.predicted
    evidence = interpret(
        feedback,
        predicted=canonical(predicted, task) if predicted is not None else None,
        classes=task.classes,
        policy=policy,
    )
    if evidence is None:
        return None
    return LabelClaim(
        feedback_id=feedback.feedback_id,
        authority=AUTHORITIES[feedback.authority],
        label=canonical(evidence.label, task) if evidence.label is not None else None,
        given_at=feedback.created_at,
        refuted=evidence.refuted,
        strength=evidence.strength,
    )


def outcome(resolution: Resolution, answer: Answer, task: Task) -> Outcome:
    """Whether `answer` was right under the standing label (None when it cannot be told)."""
    predicted = canonical(answer.predicted, task) if answer.predicted is not None else None
    label, refuted = resolution.label, resolution.refuted
    if predicted is None:
        return Outcome(label, refuted, correct=None, abs_error=None)
    if label is not None:
        if task.is_classification:
            return Outcome(label, refuted, correct=same_label(label, predicted), abs_error=None)
        error = abs(float(label) - float(predicted))
        return Outcome(label, refuted, correct=None, abs_error=error)
    if refuted is not None and same_label(refuted, predicted):
        return Outcome(label, refuted, correct=False, abs_error=None)
    return Outcome(label, refuted, correct=None, abs_error=None)


def epoch(moment: datetime) -> float:
    """Seconds since the epoch, as the store keeps times."""
    return moment.timestamp()


def moment(seconds: float) -> datetime:
    """An aware UTC datetime from epoch seconds."""
    return datetime.fromtimestamp(seconds, UTC)
