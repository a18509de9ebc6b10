"""Grouping work per version and naming why a request was refused."""

from __future__ import annotations

from services.inference.domain import batching
from services.inference.domain.batching import Groups
from shared.contracts import ErrorCode
from shared.signature import InputProblem


def test_groups_keep_first_seen_order_and_pop_selected_keys() -> None:
    groups: Groups[tuple[str, int], int] = Groups()
    for index, key in enumerate([("a", 1), ("b", 1), ("a", 1), ("a", 2), ("b", 1)]):
        groups.add(key, index)
    assert list(groups) == [("a", 1), ("b", 1), ("a", 2)]
    assert groups.sizes() == {("a", 1): 2, ("b", 1): 2, ("a", 2): 1}
    assert groups.pop([("a", 2), ("zzz", 9)]) == [(("a", 2), [3])]
    assert groups.pop() == [(("a", 1), [0, 2]), (("b", 1), [1, 4])]
    assert len(groups) == 0


def test_refusals_carry_codes_callers_branch_on() -> None:
    assert batching.unknown_model("churn").code == ErrorCode.UNKNOWN_MODEL
    assert "churn" in batching.unknown_model("churn").message
    missing = batching.unknown_version("iris", 9)
    assert (missing.code, missing.version) == (ErrorCode.UNKNOWN_VERSION, 9)
    assert batching.no_deployment("iris").code == ErrorCode.NO_DEPLOYMENT
    failed = batching.model_failure("iris", 2, "boom")
    assert (failed.code, failed.version) == (ErrorCode.MODEL_FAILURE, 2)
    assert "boom" in failed.message


def test_invalid_input_lists_every_problem() -> None:
    problems = [
        InputProblem(field="a", code="missing_feature", message="feature 'a' is missing"),
        InputProblem(field="b", code="wrong_type", message="feature 'b': expected a number"),
    ]
    refusal = batching.invalid_input("iris", 3, problems)
    assert refusal.code == ErrorCode.INVALID_INPUT
    assert refusal.version == 3
    assert "2 problems" in refusal.message
    assert "missing_feature: feature 'a' is missing" in refusal.message
    assert "wrong_type: feature 'b'" in refusal.message
