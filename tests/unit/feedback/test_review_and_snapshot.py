"""Review sampling and dataset snapshots: deterministic, so replays and replicas agree."""

from __future__ import annotations

import pytest

from services.feedback.domain.review import margin, sampled, share_of
from services.feedback.domain.snapshot import Example, to_csv, trainable
from shared.feedback_policy import ReviewRules


def test_random_sampling_takes_about_its_share_and_the_same_ids_every_time() -> None:
    rules = ReviewRules(random_share=0.1, shadow_disagreement=False, negative_rating=False)
    ids = [f"req-{n}" for n in range(20_000)]
    picked = [rid for rid in ids if sampled(rid, None, rules)]
    assert 1_800 < len(picked) < 2_200
    assert picked == [rid for rid in ids if sampled(rid, None, rules)]
    assert all(0.0 <= share_of(rid) < 1.0 for rid in ids[:100])


def test_low_margins_are_reviewed_and_the_margin_is_top_minus_runner_up() -> None:
    rules = ReviewRules(low_margin=0.2)
    assert margin({"a": 0.5, "b": 0.4, "c": 0.1}) == pytest.approx(0.1)
    assert margin({"a": 1.0}) is None
    assert sampled("r", 0.1, rules) == ["low_margin"]
    assert sampled("r", 0.3, rules) == []


def test_a_snapshot_is_the_same_bytes_for_the_same_examples_in_any_order() -> None:
    examples = [
        Example("b", {"x": 2.0, "y": None}, "dog"),
        Example("a", {"y": "red", "x": 1.5}, "cat"),
    ]
    content = to_csv(examples, "target")
    assert content == b"x,y,target\n1.5,red,cat\n2.0,,dog\n"
    assert to_csv(list(reversed(examples)), "target") == content


def test_weak_unreviewed_labels_train_only_when_the_policy_allows() -> None:
    assert trainable("label", False, train_on_weak=False)
    assert trainable("weak", True, train_on_weak=False)
    assert not trainable("weak", False, train_on_weak=False)
    assert trainable("weak", False, train_on_weak=True)
