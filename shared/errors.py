"""Error messages that stay small whatever the input: a hostile message with thousands of
problems must not make its error record too big to publish."""

from __future__ import annotations

from collections.abc import Sequence

MAX_LISTED_PROBLEMS = 10
MAX_PROBLEM_CHARS = 300


def bounded_list(problems: Sequence[str], *, total: int | None = None) -> str:
    """The first MAX_LISTED_PROBLEMS problems joined by "; ", each cut to a few hundred
    characters, then "and N more" for the rest (of `total`, if more exist than given)."""
    count = len(problems) if total is None else total
    shown = [_cut(problem) for problem in problems[:MAX_LISTED_PROBLEMS]]
    if count > len(shown):
        shown.append(f"and {count - len(shown)} more")
    return "; ".join(shown)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 1] + "…"
