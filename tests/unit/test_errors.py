"""Error messages list a bounded number of problems."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from shared.errors import MAX_LISTED_PROBLEMS, bounded_list
from shared.kafka.codec import describe_validation_error


def test_a_few_problems_are_all_listed() -> None:
    assert bounded_list(["a", "b"]) == "a; b"


def test_past_the_limit_only_their_number() -> None:
    text = bounded_list([f"problem {i}" for i in range(25_000)])
    assert text.count("problem") == MAX_LISTED_PROBLEMS
    assert text.endswith(f"and {25_000 - MAX_LISTED_PROBLEMS} more")


def test_a_long_problem_is_cut() -> None:
    assert len(bounded_list(["x" * 1_000_000])) < 1_000


def test_validation_errors_are_capped() -> None:
    class Numbers(BaseModel):
        values: list[int]

    try:
        Numbers.model_validate({"values": ["x"] * 5_000})
    except ValidationError as error:
        text = describe_validation_error(error)
    assert len(text) < 2_000
    assert text.endswith(f"and {5_000 - MAX_LISTED_PROBLEMS} more")
