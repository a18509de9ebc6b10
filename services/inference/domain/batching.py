"""Why a request gets no answer, and how a batch's work is grouped per model version."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.contracts import ErrorCode
from shared.errors import bounded_list
from shared.signature import InputProblem

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request answered with an error: the code callers branch on and a readable reason.

    `version` is the version the error concerns, when one was chosen or pinned.
    """

    code: str
    message: str
    version: int | None = None


def unknown_model(model: str) -> Refusal:
    return Refusal(ErrorCode.UNKNOWN_MODEL, f"no model named {model!r} is registered")


def unknown_version(model: str, version: int) -> Refusal:
    return Refusal(ErrorCode.UNKNOWN_VERSION, f"model {model!r} has no version {version}", version)


def version_rejected(model: str, version: int) -> Refusal:
    return Refusal(
        ErrorCode.VERSION_REJECTED,
        f"model {model!r} version {version} was rejected by an approver and answers no request",
        version,
    )


def no_deployment(model: str) -> Refusal:
    return Refusal(
        ErrorCode.NO_DEPLOYMENT,
        f"model {model!r} has no production version; pin a version or promote one",
    )


def model_failure(model: str, version: int, detail: str) -> Refusal:
    return Refusal(
        ErrorCode.MODEL_FAILURE, f"model {model!r} version {version} failed: {detail}", version
    )


def invalid_input(model: str, version: int, problems: Sequence[InputProblem]) -> Refusal:
    """The problems with the inputs, so the caller can fix them at once; past a few, only
    their number, so a hostile request cannot make its answer huge."""
    listed = bounded_list([f"{problem.code}: {problem.message}" for problem in problems])
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    return Refusal(
        ErrorCode.INVALID_INPUT,
        f"inputs do not fit model {model!r} version {version} ({count} {noun}): {listed}",
        version,
    )


@dataclass
class Groups(Generic[K, T]):
    """Work items grouped by key in first-seen order, so each key gets one vectorised call."""

    _items: dict[K, list[T]] = field(default_factory=dict)

    def add(self, key: K, item: T) -> None:
        bucket = self._items.get(key)
        if bucket is None:
            self._items[key] = [item]
        else:
            bucket.append(item)

    def pop(self, keys: Sequence[K] | None = None) -> list[tuple[K, list[T]]]:
        """Remove and return the groups under `keys` (all groups when None)."""
        chosen = list(self._items) if keys is None else [k for k in keys if k in self._items]
        return [(key, self._items.pop(key)) for key in chosen]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def sizes(self) -> dict[K, int]:
        return {key: len(items) for key, items in self._items.items()}
