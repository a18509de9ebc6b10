"""What a piece of feedback says about a prediction's label, under the model's policy.

An explicit label is ground truth. A rating or an implicit signal only says something
about the predicted label, and how much is each model's choice (configuration, not code):
"up" may confirm it, "edited" may weakly refute it, "abandoned" may mean nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from services.feedback.domain.resolution import LabelValue, same_label
from shared.contracts.feedback import Feedback
from shared.feedback_policy import FeedbackPolicy

Strength = Literal["label", "weak"]


@dataclass(frozen=True)
class Evidence:
    """A label (or only a refuted one) and how far it may be trusted."""

    label: LabelValue | None
    strength: Strength
    refuted: LabelValue | None = None
    """The predicted label this feedback says is wrong, when it cannot say what is right."""


def interpret(
    feedback: Feedback,
    *,
    predicted: LabelValue | None,
    classes: Sequence[LabelValue] | None,
    policy: FeedbackPolicy,
) -> Evidence | None:
    """The evidence in `feedback` about a prediction of `predicted`; None when it says nothing.

    A refuted binary prediction names the other class; with more classes (or a regression)
    it only rules the prediction out.
    """
    if feedback.label is not None:
        return Evidence(label=feedback.label, strength="label")
    if feedback.rating is not None:
        meaning = policy.ratings.get(feedback.rating, "ignored")
    elif feedback.signal is not None:
        meaning = policy.signals.get(feedback.signal, "ignored")
    else:
        return None
    if meaning == "ignored" or predicted is None:
        return None  # an error prediction has no label to confirm or refute
    strength: Strength = "weak" if meaning.startswith("weakly") else "label"
    if meaning.endswith("confirms"):
        return Evidence(label=predicted, strength=strength)
    others = [label for label in classes or () if not same_label(label, predicted)]
    if classes is not None and len(classes) == 2 and len(others) == 1:
        return Evidence(label=others[0], strength=strength, refuted=predicted)
    return Evidence(label=None, strength=strength, refuted=predicted)
