"""The labelled examples of a model, as the dataset export reads them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from services.feedback.adapters.store import loads
from services.feedback.adapters.tables import LABELS
from services.feedback.domain.judging import SERVED_VARIANTS
from services.feedback.domain.resolution import Authority
from services.feedback.domain.snapshot import Example, trainable


def labelled_examples(
    connection: Connection, model: str, *, since: float, train_on_weak: bool
) -> tuple[list[Example], int, int]:
    """Examples with a standing label (one per request: the answer the caller saw), the
    newest version among them, and how many weak ones the policy kept out."""
    labels = LABELS.c
    rows = connection.execute(
        sa.select(
            labels.request_id,
            labels.version,
            labels.inputs,
            labels.label,
            labels.strength,
            labels.authority,
        ).where(
            labels.model == model,
            labels.variant.in_(SERVED_VARIANTS),
            labels.label.is_not(None),
            labels.inputs.is_not(None),
            labels.predicted_at >= since,
        )
    ).all()
    examples, excluded, newest = [], 0, 0
    for row in rows:
        if not trainable(
            row.strength, row.authority == Authority.REVIEWER, train_on_weak=train_on_weak
        ):
            excluded += 1
            continue
        newest = max(newest, row.version)
        examples.append(Example(row.request_id, loads(row.inputs), loads(row.label)))
    return examples, newest, excluded
