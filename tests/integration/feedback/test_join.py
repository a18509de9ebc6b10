"""Feedback meets its prediction by request id, whichever arrives first, on the real broker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.feedback.support import (
    classified,
    feedback,
    latest_per_variant,
    letter_feedback,
    regressed,
    request,
)

pytestmark = [pytest.mark.kafka]


async def test_feedback_after_and_before_its_prediction_both_join(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory() as harness:
        await harness.served("early-bird", "setosa", routing_key="customer-7")
        await harness.send_feedback(feedback("early-bird", label="setosa"))
        # This feedback comes first; its request and prediction only later.
        await harness.send_feedback(feedback("late-answer", label="virginica"))
        await harness.served("late-answer", "versicolor", routing_key="customer-8")

        labels = latest_per_variant(await harness.labels(2))

    first, second = labels[("early-bird", "production")], labels[("late-answer", "production")]
    assert (first.label, first.predicted, first.correct) == ("setosa", "setosa", True)
    assert (second.label, second.predicted, second.correct) == ("virginica", "versicolor", False)
    assert second.inputs == request("late-answer").inputs
    assert (second.model, second.version, second.authority, second.source) == (
        "iris",
        1,
        "system",
        "app",
    )
    assert second.predicted_at < second.labelled_at


async def test_the_shadow_is_labelled_with_the_same_feedback(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory() as harness:
        await harness.served("r-1", "setosa")
        await harness.send_prediction(classified("r-1", "virginica", version=2, variant="shadow"))
        await harness.send_feedback(feedback("r-1", rating="up"))

        labels = latest_per_variant(await harness.labels(2))

    production, shadow = labels[("r-1", "production")], labels[("r-1", "shadow")]
    assert (production.version, production.label, production.correct) == (1, "setosa", True)
    assert (shadow.version, shadow.label, shadow.correct) == (2, "setosa", False)


async def test_unknown_classes_and_non_numbers_are_refused_with_a_reason(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory() as harness:
        await harness.served("r-1", "setosa")
        await harness.send_request(request("r-2", model="price"))
        await harness.send_prediction(regressed("r-2", 12.5))
        await harness.send_feedback(feedback("r-1", label="tulip", feedback_id="bad-class"))
        await harness.send_feedback(feedback("r-2", label="cheap", feedback_id="bad-number"))
        await harness.send_feedback(feedback("r-2", label=11.5, feedback_id="fine"))

        letters = {
            letter_feedback(dead)["feedback_id"]: dead for dead in await harness.dead_letters(2)
        }
        labels = await harness.labels(1)

    assert letters["bad-class"].error_code == "refused"
    assert "'tulip' is not a class of the model" in letters["bad-class"].error_message
    assert "'setosa', 'versicolor', 'virginica'" in letters["bad-class"].error_message
    assert "not a finite number" in letters["bad-number"].error_message
    assert [(e.request_id, e.label, e.predicted) for e in labels] == [("r-2", 11.5, 12.5)]


async def test_feedback_whose_prediction_never_comes_is_dead_lettered_as_unmatched(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory(match_wait_seconds=0.5) as harness:
        await harness.send_feedback(feedback("ghost", label="setosa", feedback_id="f-ghost"))

        letters = await harness.dead_letters(1)

    assert letter_feedback(letters[0])["feedback_id"] == "f-ghost"
    assert letters[0].error_code == "unmatched"
    assert "no prediction" in letters[0].error_message
    assert letters[0].key == "ghost"


async def test_duplicates_and_conflicts_follow_the_stated_rules(
    feedback_factory: Callable[..., Any],
) -> None:
    async with feedback_factory() as harness:
        await harness.served("r-1", "setosa")
        # Within the user's word, the latest wins; a system's later word does not beat it.
        await harness.send_feedback(
            feedback("r-1", label="virginica", authority="user", seconds=10)
        )
        await harness.send_feedback(feedback("r-1", label="setosa", authority="user", seconds=20))
        await harness.send_feedback(feedback("r-1", label="versicolor", seconds=30))
        # A replayed feedback id counts once, even with another label.
        await harness.served("r-2", "setosa")
        await harness.send_feedback(feedback("r-2", label="setosa", feedback_id="once"))
        await harness.send_feedback(feedback("r-2", label="virginica", feedback_id="once"))
        # A weak signal does not override a label of the same authority given earlier.
        await harness.served("r-3", "setosa")
        await harness.send_feedback(feedback("r-3", label="setosa", authority="user", seconds=5))
        await harness.send_feedback(feedback("r-3", signal="edited", authority="user"))

        await harness.joined(6)
        labels = latest_per_variant(await harness.labels(3))

    first, second, third = (labels[(rid, "production")] for rid in ("r-1", "r-2", "r-3"))
    assert (first.label, first.authority, first.conflicting) == ("setosa", "user", True)
    assert (second.label, second.feedback_id, second.conflicting) == ("setosa", "once", False)
    assert (third.label, third.strength, third.correct) == ("setosa", "label", True)
