"""The commit ledger: offsets commit in batch order, a failure rewinds it and every later batch."""

from __future__ import annotations

from dataclasses import dataclass

from shared.runtime.offsets import BatchOffsets, Commit, CommitLedger

A, B = ("requests", 0), ("requests", 1)


def offsets(first: dict[tuple[str, int], int], count: int) -> BatchOffsets[tuple[str, int]]:
    return BatchOffsets(first=first, next={tp: offset + count for tp, offset in first.items()})


@dataclass
class _Record:
    offset: int


def test_offsets_of_a_fetched_batch() -> None:
    batch = {A: [_Record(5), _Record(6), _Record(7)], B: [_Record(0)]}
    assert BatchOffsets.of(batch) == BatchOffsets(first={A: 5, B: 0}, next={A: 8, B: 1})


def test_a_produced_batch_is_committed() -> None:
    ledger: CommitLedger[tuple[str, int]] = CommitLedger()
    first = ledger.opened(offsets({A: 0, B: 0}, 10))
    assert ledger.next_commit() is None  # not produced yet
    ledger.produced(first)
    commit = ledger.next_commit()
    assert commit == Commit({A: 10, B: 10}, through=first)
    ledger.commit_succeeded(commit)
    assert ledger.in_flight == 0
    assert ledger.committed == {A: 10, B: 10}


def test_a_later_batch_waits_for_the_earlier_and_both_commit_together() -> None:
    ledger: CommitLedger[tuple[str, int]] = CommitLedger()
    first = ledger.opened(offsets({A: 0}, 10))
    second = ledger.opened(offsets({A: 10, B: 0}, 5))
    ledger.produced(second)
    assert ledger.next_commit() is None  # the first is still producing
    ledger.produced(first)
    commit = ledger.next_commit()
    assert commit == Commit({A: 15, B: 5}, through=second)


def test_one_commit_at_a_time() -> None:
    ledger: CommitLedger[tuple[str, int]] = CommitLedger()
    first = ledger.opened(offsets({A: 0}, 10))
    ledger.produced(first)
    commit = ledger.next_commit()
    assert commit is not None
    second = ledger.opened(offsets({A: 10}, 10))
    ledger.produced(second)
    assert ledger.next_commit() is None  # the first commit is under way
    ledger.commit_succeeded(commit)
    assert ledger.next_commit() == Commit({A: 20}, through=second)


def test_a_failed_batch_rewinds_itself_and_every_later_batch() -> None:
    ledger: CommitLedger[tuple[str, int]] = CommitLedger()
    committed = ledger.opened(offsets({A: 0}, 10))
    ledger.produced(committed)
    commit = ledger.next_commit()
    assert commit is not None
    ledger.commit_succeeded(commit)
    failed = ledger.opened(offsets({A: 10}, 10))
    later = ledger.opened(offsets({A: 20, B: 7}, 10))
    ledger.produced(later)  # produced, but its commit must wait for the failed batch
    error = RuntimeError("broker gone")
    ledger.failed(failed, error)
    assert ledger.next_commit() is None
    assert ledger.head_failed
    rewind = ledger.rewind()
    assert rewind is not None
    assert rewind.points == {A: 10, B: 7}
    assert rewind.error is error
    assert rewind.batches == 2
    assert ledger.in_flight == 0
    assert ledger.committed == {A: 10}  # nothing past the failure was committed
    assert ledger.rewind() is None


def test_a_failure_after_the_head_waits_until_the_head_is_done() -> None:
    ledger: CommitLedger[tuple[str, int]] = CommitLedger()
    head = ledger.opened(offsets({A: 0}, 10))
    failed = ledger.opened(offsets({A: 10}, 10))
    ledger.failed(failed)
    assert ledger.rewind() is None  # the head may still commit
    ledger.produced(head)
    commit = ledger.next_commit()
    assert commit == Commit({A: 10}, through=head)
    ledger.commit_succeeded(commit)
    rewind = ledger.rewind()
    assert rewind is not None and rewind.points == {A: 10}


def test_a_failed_commit_rewinds_the_batches_it_covered() -> None:
    ledger: CommitLedger[tuple[str, int]] = CommitLedger()
    first = ledger.opened(offsets({A: 0}, 10))
    ledger.produced(first)
    commit = ledger.next_commit()
    assert commit is not None
    ledger.commit_failed(commit, RuntimeError("rebalancing"))
    rewind = ledger.rewind()
    assert rewind is not None and rewind.points == {A: 0}
    assert ledger.committed == {}


def test_outcomes_of_forgotten_batches_are_ignored() -> None:
    ledger: CommitLedger[tuple[str, int]] = CommitLedger()
    gone = ledger.opened(offsets({A: 0}, 10))
    ledger.failed(gone)
    ledger.rewind()
    ledger.produced(gone)
    assert ledger.next_commit() is None
    assert ledger.in_flight == 0
