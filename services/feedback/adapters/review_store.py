"""The review queue's rows: items put up for review, claimed under a lease, decided once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from services.feedback.adapters.tables import REVIEW_ITEMS

OPEN, CLAIMED, LABELLED, SKIPPED = "open", "claimed", "labelled", "skipped"


@dataclass(frozen=True)
class ReviewItem:
    request_id: str
    model: str
    version: int
    variant: str
    reasons: str
    status: str
    claimed_by: str | None
    lease_until: float | None
    decided_by: str | None
    label: str | None
    created_at: float
    updated_at: float


def put_up(connection: Connection, items: Sequence[dict[str, Any]]) -> None:
    """Add items for review; a request already in the queue keeps its item."""
    if not items:
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(insert(REVIEW_ITEMS).on_conflict_do_nothing(), list(items))


def listed(
    connection: Connection, *, model: str | None, status: str | None, now: float, limit: int
) -> list[ReviewItem]:
    """Items oldest first; `open` includes claims whose lease ran out."""
    items = REVIEW_ITEMS.c
    query = sa.select(REVIEW_ITEMS).order_by(items.created_at, items.request_id).limit(limit)
    if model is not None:
        query = query.where(items.model == model)
    if status == OPEN:
        query = query.where(
            sa.or_(items.status == OPEN, sa.and_(items.status == CLAIMED, items.lease_until < now))
        )
    elif status is not None:
        query = query.where(items.status == status)
    return [ReviewItem(**row._asdict()) for row in connection.execute(query).all()]


def get(connection: Connection, request_id: str) -> ReviewItem | None:
    row = connection.execute(
        sa.select(REVIEW_ITEMS).where(REVIEW_ITEMS.c.request_id == request_id)
    ).first()
    return ReviewItem(**row._asdict()) if row is not None else None


def claim(
    connection: Connection, request_id: str, reviewer: str, *, now: float, lease_seconds: float
) -> bool:
    """Claim an open item (or one whose lease ran out, or the caller's own); True on success."""
    items = REVIEW_ITEMS.c
    result = connection.execute(
        sa.update(REVIEW_ITEMS)
        .where(
            items.request_id == request_id,
            sa.or_(
                items.status == OPEN,
                sa.and_(
                    items.status == CLAIMED,
                    sa.or_(items.lease_until < now, items.claimed_by == reviewer),
                ),
            ),
        )
        .values(
            status=CLAIMED, claimed_by=reviewer, lease_until=now + lease_seconds, updated_at=now
        )
    )
    return bool(result.rowcount)


def decide(
    connection: Connection,
    request_id: str,
    reviewer: str,
    *,
    status: str,
    label: str | None,
    now: float,
) -> bool:
    """Label or skip an item the reviewer holds under an unexpired lease; True on success."""
    items = REVIEW_ITEMS.c
    result = connection.execute(
        sa.update(REVIEW_ITEMS)
        .where(
            items.request_id == request_id,
            items.status == CLAIMED,
            items.claimed_by == reviewer,
            items.lease_until >= now,
        )
        .values(status=status, decided_by=reviewer, label=label, lease_until=None, updated_at=now)
    )
    return bool(result.rowcount)
