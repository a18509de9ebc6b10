"""The join: requests, predictions and feedback meet by request id in the store.

Each batch is one transaction. Its requests and predictions are written (insert-or-ignore
by key), then every request the batch touched that has feedback is joined from what the
store holds plus the batch's new feedback, which is written once, already settled. The
labels that come out depend only on that set of feedback, never on which batch brought
what, so a batch replayed after a crash publishes the same labels (same `label_id`) and
counts nothing twice. Feedback whose prediction has not arrived is kept as pending; the
sweeper dead-letters it once its wait runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from services.feedback.adapters import review_store
from services.feedback.adapters.feedback_rows import (
    AUTHORITY_NAMES,
    NO_CLAIM,
    claim_columns,
    dumped,
    feedback_row,
    stored_claim,
    stored_feedback,
)
from services.feedback.adapters.store import FeedbackStore, StoredFeedback
from services.feedback.domain.judging import (
    Answer,
    Task,
    claim_of,
    epoch,
    outcome,
    refusal,
    served_answer,
)
from services.feedback.domain.resolution import LabelClaim, Resolution, resolve
from services.feedback.domain.review import NEGATIVE_RATING
from services.feedback.service_layer.batch import Batch, PolicySource
from services.feedback.service_layer.review_sampling import ReviewSampler, review_item
from shared.contracts import Feedback
from shared.feedback_policy import FeedbackPolicy


@dataclass(frozen=True)
class Refusal:
    """Feedback that cannot be right for its prediction, and why."""

    feedback: Feedback
    reason: str


@dataclass
class JoinResult:
    labels: list[dict[str, Any]] = field(default_factory=list)
    """The `labels` records' fields (`LabelledExample`), times as epoch seconds and the
    inputs as their stored JSON text (written into the record as they are)."""
    refused: list[Refusal] = field(default_factory=list)
    joined: int = 0
    """Feedback joined for the first time (a replay joins nothing again)."""
    reviews: list[dict[str, Any]] = field(default_factory=list)
    """Review items the joined feedback calls for (a negative rating)."""


class Joiner:
    """Writes a batch and joins the requests it touched, in one transaction."""

    def __init__(self, store: FeedbackStore, policies: PolicySource) -> None:
        self._store = store
        self._policies = policies
        self._reviews = ReviewSampler(store, policies)

    def record(self, batch: Batch) -> JoinResult:
        store = self._store
        touched = {row["request_id"] for row in (*batch.requests, *batch.predictions)}
        named = {feedback.request_id for feedback in batch.feedback}
        with store.transaction() as connection:
            store.lock_requests(connection, touched | named)
            store.add_requests(connection, batch.requests)
            store.add_predictions(connection, batch.predictions)
            store.add_versions(connection, batch.versions)
            candidates = named | store.with_feedback(connection, touched - named)
            stored = store.feedback_of(connection, candidates)
            known = {row.feedback_id for rows in stored.values() for row in rows}
            fresh: dict[str, Feedback] = {}
            for feedback in batch.feedback:  # the first of a repeated id counts
                if feedback.feedback_id not in known:
                    fresh.setdefault(feedback.feedback_id, feedback)
            replayed = {feedback.feedback_id for feedback in batch.feedback}
            result = self._join(
                connection,
                candidates,
                stored,
                _Fresh(list(fresh.values()), batch.received_at),
                replayed=replayed,
            )
            review_store.put_up(
                connection, [*self._reviews.items(connection, batch), *result.reviews]
            )
            return result

    def _join(
        self,
        connection: Connection,
        request_ids: set[str],
        stored: dict[str, list[StoredFeedback]],
        fresh: _Fresh,
        *,
        replayed: set[str],
    ) -> JoinResult:
        """Join what can be joined; new feedback is written once, already settled, and
        feedback stored earlier as pending is updated."""
        store = self._store
        result = JoinResult()
        if not request_ids:
            return result
        answers = store.answers_of(connection, request_ids)
        inputs = store.inputs_of(connection, request_ids)
        served = {rid: served_answer(answers.get(rid, ())) for rid in request_ids}
        tasks = store.tasks_of(
            connection, {(a.model, a.version) for a in served.values() if a is not None}
        )
        settled: list[dict[str, Any]] = []
        labels: list[dict[str, Any]] = []
        new_rows: list[dict[str, Any]] = []
        policies = _PoliciesOfBatch(self._policies)
        for request_id in sorted(request_ids):
            answer = served[request_id]
            arrived = fresh.of(request_id)
            if answer is None or request_id not in inputs:
                # Still waiting for its prediction or its request.
                new_rows.extend(feedback_row(f, fresh.received_at) for f in arrived)
                continue
            joined = _RequestJoin(
                request_id=request_id,
                answers=answers[request_id],
                served=answer,
                task=tasks.get((answer.model, answer.version), Task(classes=None)),
                policy=policies.policy_for(answer.model),
                inputs_text=inputs[request_id],
            )
            joined.settle(stored.get(request_id, []), replayed=replayed)
            for feedback in arrived:
                new_rows.append(
                    feedback_row(feedback, fresh.received_at) | joined.settle_new(feedback)
                )
            settled.extend(joined.settled)
            result.refused.extend(joined.refused)
            result.joined += joined.newly_joined
            if joined.rated_down and joined.policy.review.negative_rating:
                row = {"request_id": request_id, **_where(answer)}
                result.reviews.append(review_item(row, [NEGATIVE_RATING], answer.predicted_at))
            for row, example in joined.labels():
                labels.append(row)
                result.labels.append(example)
        store.add_feedback(connection, new_rows)
        store.settle_feedback(connection, settled)
        store.put_labels(connection, labels)
        return result


class _PoliciesOfBatch:
    """Each model's policy looked up once per batch (a lock and a clock read each, with
    the registry's cache), not once per request."""

    def __init__(self, source: PolicySource) -> None:
        self._source = source
        self._found: dict[str, FeedbackPolicy] = {}

    def policy_for(self, model: str) -> FeedbackPolicy:
        policy = self._found.get(model)
        if policy is None:
            policy = self._found[model] = self._source.policy_for(model)
        return policy


@dataclass
class _Fresh:
    """Feedback of the batch the store has not seen, by request id."""

    feedback: list[Feedback]
    received_at: float
    _by_request: dict[str, list[Feedback]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for feedback in self.feedback:
            self._by_request.setdefault(feedback.request_id, []).append(feedback)

    def of(self, request_id: str) -> list[Feedback]:
        return self._by_request.get(request_id, [])


@dataclass
class _RequestJoin:
    """The join of one request whose prediction and inputs are known."""

    request_id: str
    answers: Sequence[Answer]
    served: Answer
    task: Task
    policy: FeedbackPolicy
    inputs_text: str
    settled: list[dict[str, Any]] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    claims: list[LabelClaim] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    newly_joined: int = 0
    rated_down: bool = False

    def settle(self, rows: Sequence[StoredFeedback], *, replayed: set[str]) -> None:
        for row in rows:
            if row.state == "pending":
                self._settle_pending(row)
            elif row.state == "joined":
                self.sources[row.feedback_id] = row.source
                claim = stored_claim(row)
                if claim is not None:
                    self.claims.append(claim)
            elif row.state == "refused" and row.feedback_id in replayed:
                # Refused before, its dead letter maybe unpublished: say it again.
                self.refused.append(Refusal(stored_feedback(row), _refusal_reason(row, self)))

    def _settle_pending(self, row: StoredFeedback) -> None:
        self.settled.append({"feedback_id": row.feedback_id} | self._judge(stored_feedback(row)))

    def settle_new(self, feedback: Feedback) -> dict[str, Any]:
        """The settled columns of feedback this batch brought."""
        return self._judge(feedback)

    def _judge(self, feedback: Feedback) -> dict[str, Any]:
        """Refuse the feedback or take its claim; the columns that record which."""
        served = self.served
        reason = _error_answer_reason(self.request_id) if served.predicted is None else None
        reason = reason or refusal(feedback, self.task)
        where = _where(served)
        if reason is not None:
            self.refused.append(Refusal(feedback, reason))
            return {"state": "refused", **where, "reason": reason} | NO_CLAIM
        claim = claim_of(feedback, served, self.task, self.policy)
        self.newly_joined += 1
        self.rated_down = self.rated_down or feedback.rating == "down"
        self.sources[feedback.feedback_id] = feedback.source
        if claim is not None:
            self.claims.append(claim)
        return {"state": "joined", **where, "reason": None} | (
            claim_columns(claim) if claim is not None else NO_CLAIM
        )

    def labels(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """The standing label as it applies to each variant that answered."""
        resolution = resolve(self.claims)
        if resolution is None:
            return []
        return [
            self._label(answer, resolution)
            for answer in self.answers
            if answer.predicted is not None
        ]

    def _label(
        self, answer: Answer, resolution: Resolution
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The store's row, and the `labels` record's fields (times as epoch seconds)."""
        decided_by = resolution.decided_by
        judged = outcome(resolution, answer, self.task)
        labelled_at = epoch(decided_by.given_at)
        row = {
            "request_id": self.request_id,
            "variant": answer.variant,
            "model": answer.model,
            "version": answer.version,
            "predicted": dumped(answer.predicted),
            "label": dumped(judged.label),
            "refuted": dumped(judged.refuted),
            "correct": judged.correct,
            "abs_error": judged.abs_error,
            "strength": decided_by.strength,
            "authority": int(decided_by.authority),
            "source": self.sources.get(decided_by.feedback_id, "unknown"),
            "feedback_id": decided_by.feedback_id,
            "conflicting": resolution.conflicting,
            "predicted_at": answer.predicted_at,
            "labelled_at": labelled_at,
            "inputs": self.inputs_text,
        }
        example = {
            "label_id": f"{self.request_id}:{answer.variant}:{decided_by.feedback_id}",
            "request_id": self.request_id,
            "model": answer.model,
            "version": answer.version,
            "variant": answer.variant,
            "inputs": self.inputs_text,
            "predicted": answer.predicted,
            "label": judged.label,
            "refuted": judged.refuted,
            "correct": judged.correct,
            "strength": decided_by.strength,
            "source": row["source"],
            "authority": AUTHORITY_NAMES[decided_by.authority],
            "feedback_id": decided_by.feedback_id,
            "conflicting": resolution.conflicting,
            "predicted_at": answer.predicted_at,
            "labelled_at": labelled_at,
        }
        return row, example


def _where(answer: Answer) -> dict[str, Any]:
    return {"model": answer.model, "version": answer.version, "variant": answer.variant}


def _error_answer_reason(request_id: str) -> str:
    return f"request {request_id} was answered with an error; there is no prediction to label"


def _refusal_reason(row: StoredFeedback, join: _RequestJoin) -> str:
    feedback = stored_feedback(row)
    if join.served.predicted is None:
        return _error_answer_reason(join.request_id)
    return refusal(feedback, join.task) or "refused"
