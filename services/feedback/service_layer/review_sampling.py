"""Which predictions of a batch go to the review queue, under each model's rules.

Random share and low confidence are decided as predictions arrive; a shadow that
disagrees once both answers are stored; a "down" rating when it is joined.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from services.feedback.adapters import review_store
from services.feedback.adapters.store import FeedbackStore
from services.feedback.domain.judging import SERVED_VARIANTS, served_answer
from services.feedback.domain.review import SHADOW_DISAGREEMENT, sampled
from services.feedback.service_layer.batch import Batch, PolicySource
from shared.feedback_policy import ReviewRules


class ReviewSampler:
    """Review items a batch calls for."""

    def __init__(self, store: FeedbackStore, policies: PolicySource) -> None:
        self._store = store
        self._policies = policies

    def items(self, connection: Connection, batch: Batch) -> list[dict[str, Any]]:
        return [*self._sampled(batch), *self._disagreeing_shadows(connection, batch)]

    def _sampled(self, batch: Batch) -> list[dict[str, Any]]:
        """Served predictions the model's rules sample at random or for low confidence."""
        items = []
        rules_of: dict[str, ReviewRules] = {}  # looked up once per model and batch
        for row in batch.predictions:
            if row["variant"] not in SERVED_VARIANTS or row["predicted"] is None:
                continue
            rules = rules_of.get(row["model"])
            if rules is None:
                rules = rules_of[row["model"]] = self._policies.policy_for(row["model"]).review
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
                row = {
                    "request_id": request_id,
                    "model": served.model,
                    "version": served.version,
                    "variant": served.variant,
                }
                items.append(review_item(row, [SHADOW_DISAGREEMENT], batch.received_at))
        return items


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
