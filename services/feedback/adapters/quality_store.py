"""Live-quality counts straight from the store: one grouped query per table, per window."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from services.feedback.adapters.tables import FEEDBACK, LABELS, PREDICTIONS
from services.feedback.domain.quality import Counts

MAX_DELAYS = 10_000
"""Delays read per variant for the percentiles: the most recent ones."""

Key = tuple[str, int, str]


def _ones(condition: Any) -> Any:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def counts_since(connection: Connection, since: float, model: str | None = None) -> list[Counts]:
    """Counts per (model, version, variant) of predictions made since `since`."""
    labels = LABELS.c
    label_rows = connection.execute(
        _for_model(
            sa.select(
                labels.model,
                labels.version,
                labels.variant,
                sa.func.count(),
                sa.func.count(labels.correct),
                _ones(labels.correct.is_(True)),
                sa.func.coalesce(sa.func.sum(labels.abs_error), 0.0),
                sa.func.count(labels.abs_error),
                _ones(labels.conflicting.is_(True)),
            ).where(labels.predicted_at >= since),
            labels.model,
            model,
        ).group_by(labels.model, labels.version, labels.variant)
    ).all()
    served = PREDICTIONS.c
    prediction_rows = connection.execute(
        _for_model(
            sa.select(served.model, served.version, served.variant, sa.func.count()).where(
                served.predicted_at >= since, served.predicted.is_not(None)
            ),
            served.model,
            model,
        ).group_by(served.model, served.version, served.variant)
    ).all()
    given = FEEDBACK.c
    rating_rows = connection.execute(
        _for_model(
            sa.select(
                given.model, given.version, given.variant, given.value, sa.func.count()
            ).where(given.kind == "rating", given.state == "joined", given.given_at >= since),
            given.model,
            model,
        ).group_by(given.model, given.version, given.variant, given.value)
    ).all()
    predictions: dict[Key, int] = {(r[0], r[1], r[2]): r[3] for r in prediction_rows}
    ratings: dict[Key, dict[str, int]] = defaultdict(dict)
    for row in rating_rows:
        ratings[(row[0], row[1], row[2])][row[3].strip('"')] = row[4]
    labelled: dict[Key, Any] = {(r[0], r[1], r[2]): r for r in label_rows}
    keys = sorted(set(predictions) | set(labelled))
    return [_counts(key, predictions.get(key, 0), labelled.get(key), ratings[key]) for key in keys]


def _counts(key: Key, predictions: int, row: Any, ratings: dict[str, int]) -> Counts:
    model, version, variant = key
    labelled, judged, correct, error_sum, valued, conflicts = (
        (row[3], row[4], row[5] or 0, float(row[6] or 0.0), row[7], row[8] or 0)
        if row is not None
        else (0, 0, 0, 0.0, 0, 0)
    )
    return Counts(
        model=model,
        version=version,
        variant=variant,
        predictions=predictions,
        labelled=labelled,
        judged=judged,
        correct=correct,
        absolute_error_sum=error_sum,
        valued=valued,
        conflicts=conflicts,
        ratings_up=ratings.get("up", 0),
        ratings_down=ratings.get("down", 0),
    )


def delays_since(connection: Connection, since: float, key: Key) -> list[float]:
    """Seconds from prediction to label of the variant's most recent labels."""
    labels = LABELS.c
    model, version, variant = key
    return list(
        connection.execute(
            sa.select(labels.labelled_at - labels.predicted_at)
            .where(
                labels.model == model,
                labels.version == version,
                labels.variant == variant,
                labels.predicted_at >= since,
            )
            .order_by(labels.predicted_at.desc())
            .limit(MAX_DELAYS)
        ).scalars()
    )


def _for_model(statement: Any, column: Any, model: str | None) -> Any:
    return statement if model is None else statement.where(column == model)
