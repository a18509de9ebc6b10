"""Which label a prediction ends up with when several pieces of feedback speak about it.

Reviewer beats user beats system; within one authority a label beats a weak signal's
guess, and then the latest word wins. The
answer depends only on the set of claims, never on their arrival order, and a claim seen
twice (a replay after a crash) counts once, so reprocessing a stream changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Literal

LabelValue = str | int | float | bool
Strength = Literal["label", "weak"]


class Authority(IntEnum):
    """Who gave a label; a higher authority overrides a lower one."""

    SYSTEM = 0
    USER = 1
    REVIEWER = 2


@dataclass(frozen=True)
class LabelClaim:
    """One piece of feedback saying what a prediction's label is."""

    feedback_id: str
    authority: Authority
    label: LabelValue | None
    given_at: datetime
    refuted: LabelValue | None = None
    """What the feedback ruled out, when it named no label (a "down" among many classes)."""
    strength: Strength = "label"

    def contradicts(self, other: LabelClaim) -> bool:
        """The two claims cannot both be right."""
        if self.label is not None and other.label is not None:
            return not same_label(self.label, other.label)
        if self.label is not None and other.refuted is not None:
            return same_label(self.label, other.refuted)
        if other.label is not None and self.refuted is not None:
            return same_label(other.label, self.refuted)
        return False


@dataclass(frozen=True)
class Resolution:
    """The label that stands, the claim it comes from, and the claims that disagree."""

    label: LabelValue | None
    """None when the deciding feedback only ruled its prediction out."""
    decided_by: LabelClaim
    disagreeing: tuple[LabelClaim, ...]

    @property
    def refuted(self) -> LabelValue | None:
        return self.decided_by.refuted

    @property
    def conflicting(self) -> bool:
        """Some feedback named another label: worth a flag and a count, maybe a review."""
        return bool(self.disagreeing)


def resolve(claims: Iterable[LabelClaim]) -> Resolution | None:
    """The standing label of a prediction, or None without any claim.

    >>> from datetime import UTC
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> resolve([
    ...     LabelClaim("f1", Authority.USER, "cat", at),
    ...     LabelClaim("f2", Authority.REVIEWER, "dog", at),
    ... ]).label
    'dog'
    """
    unique = {claim.feedback_id: claim for claim in claims}
    if not unique:
        return None
    if len(unique) == 1:  # most predictions get one piece of feedback
        (only,) = unique.values()
        alone = (only,) if only.contradicts(only) else ()
        return Resolution(label=only.label, decided_by=only, disagreeing=alone)
    # feedback_id breaks ties, so equal timestamps still give one answer in any order.
    winner = max(
        unique.values(),
        key=lambda claim: (
            claim.authority,
            claim.strength == "label",
            claim.given_at,
            claim.feedback_id,
        ),
    )
    disagreeing = tuple(
        sorted(
            (claim for claim in unique.values() if claim.contradicts(winner)),
            key=lambda claim: claim.feedback_id,
        )
    )
    return Resolution(label=winner.label, decided_by=winner, disagreeing=disagreeing)


def same_label(first: LabelValue, second: LabelValue) -> bool:
    """Numbers compare by value (`3` is `3.0`); otherwise kind matters too, so `True`,
    `1` and `"1"` are three different labels."""
    if _is_number(first) and _is_number(second):
        return first == second
    return type(first) is type(second) and first == second


def _is_number(value: LabelValue) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
