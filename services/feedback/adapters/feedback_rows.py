"""How feedback and its claims are kept in the store's rows, and read back.

Authorities are stored as their rank, labels and values as JSON text (so `1`, `1.0`,
`true` and `"1"` stay apart), times as epoch seconds.
"""

from __future__ import annotations

from typing import Any

from services.feedback.adapters.store import StoredFeedback, dumps
from services.feedback.domain.judging import epoch, moment
from services.feedback.domain.resolution import Authority, LabelClaim
from shared.contracts import Feedback
from shared.contracts.feedback import FeedbackAuthority

AUTHORITY_NAMES: dict[int, FeedbackAuthority] = {
    Authority.SYSTEM: "system",
    Authority.USER: "user",
    Authority.REVIEWER: "reviewer",
}
NO_CLAIM: dict[str, Any] = {"strength": None, "label": None, "refuted": None}


def claim_columns(claim: LabelClaim) -> dict[str, Any]:
    return {
        "strength": claim.strength,
        "label": dumped(claim.label),
        "refuted": dumped(claim.refuted),
    }


def dumped(value: Any) -> str | None:
    return None if value is None else dumps(value)


def feedback_row(feedback: Feedback, received_at: float) -> dict[str, Any]:
    """The store's row of a feedback record not joined yet."""
    kind, value = (
        ("label", feedback.label)
        if feedback.label is not None
        else ("rating", feedback.rating)
        if feedback.rating is not None
        else ("signal", feedback.signal)
    )
    return {
        "feedback_id": feedback.feedback_id,
        "request_id": feedback.request_id,
        "kind": kind,
        "value": dumps(value),
        "authority": int(_AUTHORITIES[feedback.authority]),
        "source": feedback.source,
        "given_at": epoch(feedback.created_at),
        "received_at": received_at,
        "state": "pending",
        **_UNSETTLED,
    }


_UNSETTLED: dict[str, Any] = {
    "model": None,
    "version": None,
    "variant": None,
    "reason": None,
    **NO_CLAIM,
}
"""The columns that say what feedback turned out to say, before it is settled."""
_AUTHORITIES = {name: Authority(level) for level, name in AUTHORITY_NAMES.items()}


def stored_feedback(row: StoredFeedback) -> Feedback:
    """The feedback record a stored row came from (validated when it was read)."""
    return Feedback.model_construct(
        feedback_id=row.feedback_id,
        request_id=row.request_id,
        source=row.source,
        authority=AUTHORITY_NAMES[row.authority],
        created_at=moment(row.given_at),
        **{row.kind: row.value},
    )


def stored_claim(row: StoredFeedback) -> LabelClaim | None:
    """The claim a joined row made (None for feedback that said nothing)."""
    if row.strength is None:
        return None
    return LabelClaim(
        feedback_id=row.feedback_id,
        authority=Authority(row.authority),
        label=row.label,
        given_at=moment(row.given_at),
        refuted=row.refuted,
        strength="weak" if row.strength == "weak" else "label",
    )
