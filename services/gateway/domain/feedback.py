"""Who may label a job, with what authority, and whether a label fits the prediction."""

from __future__ import annotations

import math
from collections.abc import Sequence

from shared.clients.authentication import Caller
from shared.contracts import ClassifierOutput, RegressorOutput
from shared.contracts.base import Label
from shared.contracts.feedback import FeedbackAuthority
from shared.errors import bounded_list
from shared.roles import Role
from shared.signature import label_text


def is_reviewer(caller: Caller) -> bool:
    """Reviewers (and every role above) label any prediction, whoever asked for it."""
    return caller.has_role(Role.REVIEWER)


def may_label(caller: Caller, owner: str | None) -> bool:
    """The key that submitted a job labels it, or a reviewer. A job published straight to
    Kafka has no owner: only reviewers label it."""
    return is_reviewer(caller) or (owner is not None and owner == caller.name)


def authority_of(caller: Caller) -> FeedbackAuthority:
    """A reviewer's word outranks a user's; through the gateway nobody speaks as a system."""
    return "reviewer" if is_reviewer(caller) else "user"


def label_problem(
    label: Label, output: ClassifierOutput | RegressorOutput, classes: Sequence[str]
) -> str | None:
    """Why `label` cannot be the truth about this answer, or None when it can. `classes` are
    the classifier's classes as text (unused for a regressor)."""
    if isinstance(output, RegressorOutput):
        if isinstance(label, bool) or not isinstance(label, int | float):
            return f"label {_shown(label)} is not a number, and the model is a regressor"
        if not math.isfinite(label):
            return f"label {_shown(label)} is not a finite number"
        return None
    if label_text(label) not in classes:
        known = bounded_list([repr(name) for name in sorted(classes)], total=len(classes))
        return f"label {_shown(label)} is not one of the model's classes: {known}"
    return None


def _shown(label: Label) -> str:
    """The label as the caller wrote it, cut short: an error message stays small."""
    text = repr(label)
    return text if len(text) <= 80 else f"{text[:77]}..."
