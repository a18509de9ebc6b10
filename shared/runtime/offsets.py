"""Which offsets a consumer may commit, or where it must consume again, as batches finish.

Pure bookkeeping, so the at-least-once rules (commit in batch order, each batch only after
its own outputs and every earlier batch; a failure rewinds it and every later batch) are
tested without a broker.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, Protocol, TypeVar

P = TypeVar("P", bound=Hashable)


class _Positioned(Protocol):
    @property
    def offset(self) -> int: ...


@dataclass(frozen=True, slots=True)
class BatchOffsets(Generic[P]):
    """Where a batch starts (to consume it again) and the offsets that commit it."""

    first: Mapping[P, int]
    next: Mapping[P, int]

    @classmethod
    def of(cls, batch: Mapping[P, Sequence[_Positioned]]) -> BatchOffsets[P]:
        """The offsets of a getmany() result (records per partition, in offset order)."""
        return cls(
            first={partition: records[0].offset for partition, records in batch.items()},
            next={partition: records[-1].offset + 1 for partition, records in batch.items()},
        )


class _State(Enum):
    PRODUCING = "producing"
    PRODUCED = "produced"
    COMMITTING = "committing"
    FAILED = "failed"


@dataclass(slots=True)
class _Open(Generic[P]):
    offsets: BatchOffsets[P]
    state: _State = _State.PRODUCING
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Commit(Generic[P]):
    """Offsets to commit now: every batch up to sequence number `through` is produced."""

    offsets: dict[P, int]
    through: int


@dataclass(frozen=True, slots=True)
class Rewind(Generic[P]):
    """Consume again from `points`: the failed batch and every later one are given up."""

    points: dict[P, int]
    error: BaseException | None
    batches: int


@dataclass
class CommitLedger(Generic[P]):
    """Batches between fetch and commit, in fetch order, with what each has come to."""

    committed: dict[P, int] = field(default_factory=dict)
    """The last committed offset per partition (for consumer lag)."""
    _open: dict[int, _Open[P]] = field(default_factory=dict)
    _next_sequence: int = 0

    @property
    def in_flight(self) -> int:
        return len(self._open)

    @property
    def oldest(self) -> int | None:
        """The sequence number of the oldest open batch."""
        return next(iter(self._open), None)

    def opened(self, offsets: BatchOffsets[P]) -> int:
        """A batch's outputs go to the producer; returns its sequence number."""
        sequence = self._next_sequence
        self._next_sequence += 1
        self._open[sequence] = _Open(offsets)
        return sequence

    def produced(self, sequence: int) -> None:
        """Every output of the batch is acknowledged."""
        entry = self._open.get(sequence)
        if entry is not None and entry.state is _State.PRODUCING:
            entry.state = _State.PRODUCED

    def failed(self, sequence: int, error: BaseException | None = None) -> None:
        """Producing the batch failed: it must be consumed again."""
        entry = self._open.get(sequence)
        if entry is not None and entry.state is not _State.FAILED:
            entry.state = _State.FAILED
            entry.error = error

    def next_commit(self) -> Commit[P] | None:
        """The offsets of the produced batches at the head, unless a commit is under way
        or the head is not produced yet. Its batches count as committing until told."""
        offsets: dict[P, int] = {}
        through = None
        for sequence, entry in self._open.items():
            if entry.state is _State.COMMITTING:
                return None
            if entry.state is not _State.PRODUCED:
                break
            entry.state = _State.COMMITTING
            offsets.update(entry.offsets.next)
            through = sequence
        if through is None:
            return None
        return Commit(offsets, through)

    def commit_succeeded(self, commit: Commit[P]) -> None:
        for sequence in [s for s in self._open if s <= commit.through]:
            del self._open[sequence]
        self.committed.update(commit.offsets)

    def commit_failed(self, commit: Commit[P], error: BaseException | None = None) -> None:
        for sequence, entry in self._open.items():
            if sequence <= commit.through:
                entry.state = _State.FAILED
                entry.error = error

    @property
    def head_failed(self) -> bool:
        head = next(iter(self._open.values()), None)
        return head is not None and head.state is _State.FAILED

    def rewind(self) -> Rewind[P] | None:
        """If the oldest batch failed: the earliest offset per partition of it and of every
        later batch (their commits would follow it), and the ledger forgets them all."""
        if not self.head_failed:
            return None
        points: dict[P, int] = {}
        for entry in self._open.values():
            for partition, offset in entry.offsets.first.items():
                points[partition] = min(offset, points.get(partition, offset))
        error = next(iter(self._open.values())).error
        batches = len(self._open)
        self._open.clear()
        return Rewind(points, error, batches)
