"""Reviewer beats user beats system, the latest word wins, replays and order change nothing."""

from __future__ import annotations

import doctest
import itertools
from datetime import UTC, datetime, timedelta

from services.feedback.domain import resolution as resolution_rules
from services.feedback.domain.resolution import Authority, LabelClaim, resolve, same_label

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _claim(feedback_id: str, authority: Authority, label: object, minute: int) -> LabelClaim:
    return LabelClaim(feedback_id, authority, label, START + timedelta(minutes=minute))  # type: ignore[arg-type]


def test_no_claim_no_label() -> None:
    assert resolve([]) is None


def test_a_reviewer_beats_a_later_user_who_beats_a_later_system() -> None:
    claims = [
        _claim("review", Authority.REVIEWER, "cat", 0),
        _claim("user", Authority.USER, "dog", 5),
        _claim("system", Authority.SYSTEM, "bird", 9),
    ]

    resolution = resolve(claims)

    assert resolution is not None
    assert resolution.label == "cat"
    assert resolution.decided_by.feedback_id == "review"
    assert [claim.feedback_id for claim in resolution.disagreeing] == ["system", "user"]
    assert resolution.conflicting


def test_within_one_authority_the_latest_word_wins() -> None:
    resolution = resolve(
        [_claim("early", Authority.USER, "cat", 0), _claim("late", Authority.USER, "dog", 3)]
    )

    assert resolution is not None
    assert (resolution.label, resolution.decided_by.feedback_id) == ("dog", "late")


def test_agreeing_claims_are_no_conflict() -> None:
    resolution = resolve(
        [_claim("a", Authority.USER, "cat", 0), _claim("b", Authority.REVIEWER, "cat", 1)]
    )

    assert resolution is not None
    assert not resolution.conflicting


def test_order_and_replays_change_nothing() -> None:
    claims = [
        _claim("a", Authority.USER, "cat", 0),
        _claim("b", Authority.USER, "dog", 0),  # the same moment: the id decides
        _claim("c", Authority.SYSTEM, "bird", 7),
    ]
    expected = resolve(claims)

    for order in itertools.permutations(claims):
        assert resolve([*order, *order]) == expected
    assert expected is not None and expected.decided_by.feedback_id == "b"


def test_numbers_compare_by_value_other_kinds_do_not_mix() -> None:
    assert same_label(3, 3.0)
    assert not same_label(True, 1)
    assert not same_label("1", 1)
    assert not same_label("cat", "Cat")


def test_the_docstring_example_holds() -> None:
    assert doctest.testmod(resolution_rules).failed == 0
