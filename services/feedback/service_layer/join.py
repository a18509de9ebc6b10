"""The join: requests, predictions and feedback meet by request id in the store.

Each batch is one transaction: its rows are written (insert-or-ignore by key), then every
request the batch touched that has feedback is joined again from what the store holds.
The labels that come out depend only on the stored rows, never on what this batch
happened to add, so a batch replayed after a crash publishes the same labels (same
`label_id`) and counts nothing twice. Feedback whose prediction has not arrived stays
pending; the sweeper dead-letters it once its wait runs out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection

from services.feedback.adapters import review_store
from services.feedback.adapters.store import FeedbackStore, StoredFeedback, dumps, loads
from services.feedback.domain.judging import (
    SERVED_VARIANTS,
    Answer,
    Task,
    claim_of,
    epoch,
    moment,
    outcome,
    refusal,
    served_answer,
)
from services.feedback.domain.resolution import Authority, LabelClaim, Resolution, resolve
from services.feedback.domain.review import NEGATIVE_RATING, SHADOW_DISAGREEMENT, sampled
from shared.contracts import Feedback
from shared.contracts.feedback import FeedbackAuthority
from shared.feedback_policy import FeedbackPolicy

AUTHORITY_NAMES: dict[int, FeedbackAuthority] = {
    Authority.SYSTEM: "system",
    Authority.USER: "user",
    Authority.REVIEWER: "reviewer",
}


class PolicySource(Protocol):
    """Each model's feedback policy (kept in the registry); called from the store's thread."""

    def policy_for(self, model: str) -> FeedbackPolicy: ...


class DefaultPolicies:
    """Every model under the default policy (no registry configured)."""

    def policy_for(self, model: str) -> FeedbackPolicy:
        return FeedbackPolicy()


@dataclass
class Batch:
    """What a batch of records adds to the store, already decoded and checked."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    margins: dict[str, float] = field(default_factory=dict)
    """How far each served classification's top class led the runner-up, by request id."""
    received_at: float = 0.0


@dataclass(frozen=True)
class Refusal:
    """Feedback that cannot be right for its prediction, and why."""

    feedback: Feedback
    reason: str


@dataclass
class JoinResult:
    labels: list[dict[str, Any]] = field(default_factory=list)
    """The `labels` records' fields (`LabelledExample`), times as epoch seconds."""
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
                connection,
                [
                    *self._sampled(batch),
                    *self._disagreeing_shadows(connection, batch),
                    *result.reviews,
                ],
            )
            return result

    def _sampled(self, batch: Batch) -> list[dict[str, Any]]:
        """Served predictions the model's rules sample at random or for low confidence."""
        items = []
        for row in batch.predictions:
            if row["variant"] not in SERVED_VARIANTS or row["predicted"] is None:
                continue
            rules = self._policies.policy_for(row["model"]).review
            reasons = sampled(row["request_id"], batch.margins.get(row["request_id"]), rules)
            if reasons:
                items.append(review_item(row, reasons, batch.received_at))
        return items

    def _disagreeing_shadows(self, connection: Connection, batch: Batch) -> list[dict[str, Any]]:
        """Requests whose shadow predicted another label than the answer the caller got."""
        shadowed = {row["request_id"] for row in batch.predictions if row["variant"] == "shadow"}
        if not shadowed:
            return []
        items = []
        for request_id, answers in self._store.answers_of(connection, shadowed).items():
            served = served_answer(answers)
            shadow = next((a for a in answers if a.variant == "shadow"), None)
            if served is None or shadow is None or served.predicted is None:
                continue
            if not self._policies.policy_for(served.model).review.shadow_disagreement:
                continue
            if shadow.predicted is not None and shadow.predicted != served.predicted:
                row = {"request_id": request_id, **_where(served)}
                items.append(review_item(row, [SHADOW_DISAGREEMENT], batch.received_at))
        return items

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
                policy=self._policies.policy_for(answer.model),
                inputs=loads(inputs[request_id]),
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
    inputs: Mapping[str, Any]
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
            return {"state": "refused", **where, "reason": reason} | _NO_CLAIM
        claim = claim_of(feedback, served, self.task, self.policy)
        self.newly_joined += 1
        self.rated_down = self.rated_down or feedback.rating == "down"
        self.sources[feedback.feedback_id] = feedback.source
        if claim is not None:
            self.claims.append(claim)
        return {"state": "joined", **where, "reason": None} | (
            _claim_columns(claim) if claim is not None else _NO_CLAIM
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
            "predicted": dumps(answer.predicted),
            "label": _dumped(judged.label),
            "refuted": _dumped(judged.refuted),
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
            "inputs": self.inputs,
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


_NO_CLAIM: dict[str, Any] = {"strength": None, "label": None, "refuted": None}


def _where(answer: Answer) -> dict[str, Any]:
    return {"model": answer.model, "version": answer.version, "variant": answer.variant}


def review_item(row: Mapping[str, Any], reasons: list[str], now: float) -> dict[str, Any]:
    """A new review-queue row for a served prediction."""
    return {
        "request_id": row["request_id"],
        "model": row["model"],
        "version": row["version"],
        "variant": row["variant"],
        "reasons": ",".join(reasons),
        "status": review_store.OPEN,
        "created_at": now,
        "updated_at": now,
    }


def _claim_columns(claim: LabelClaim) -> dict[str, Any]:
    return {
        "strength": claim.strength,
        "label": _dumped(claim.label),
        "refuted": _dumped(claim.refuted),
    }


def _dumped(value: Any) -> str | None:
    return None if value is None else dumps(value)


def _error_answer_reason(request_id: str) -> str:
    return f"request {request_id} was answered with an error; there is no prediction to label"


def _refusal_reason(row: StoredFeedback, join: _RequestJoin) -> str:
    feedback = stored_feedback(row)
    if join.served.predicted is None:
        return _error_answer_reason(join.request_id)
    return refusal(feedback, join.task) or "refused"


def feedback_row(feedback: Feedback, received_at: float) -> dict[str, Any]:
    """The store's row of a feedback record not joined yet."""
    kind, value = (
        ("label", feedback.label)
        if feedback.label is not None
        else ("rating", feedback.rating)
        if feedback.rating is not None
        else ("signal", feedback.signal)
    )
    return {
        "feedback_id": feedback.feedback_id,
        "request_id": feedback.request_id,
        "kind": kind,
        "value": dumps(value),
        "authority": int(_AUTHORITIES[feedback.authority]),
        "source": feedback.source,
        "given_at": epoch(feedback.created_at),
        "received_at": received_at,
        "state": "pending",
    }


_AUTHORITIES = {name: Authority(level) for level, name in AUTHORITY_NAMES.items()}


def stored_feedback(row: StoredFeedback) -> Feedback:
    """The feedback record a stored row came from (validated when it was read)."""
    return Feedback.model_construct(
        feedback_id=row.feedback_id,
        request_id=row.request_id,
        source=row.source,
        authority=AUTHORITY_NAMES[row.authority],
        created_at=moment(row.given_at),
        **{row.kind: row.value},
    )


def stored_claim(row: StoredFeedback) -> LabelClaim | None:
    """The claim a joined row made (None for feedback that said nothing)."""
    if row.strength is None:
        return None
    return LabelClaim(
        feedback_id=row.feedback_id,
        authority=Authority(row.authority),
        label=row.label,
        given_at=moment(row.given_at),
        refuted=row.refuted,
        strength="weak" if row.strength == "weak" else "label",
    )
