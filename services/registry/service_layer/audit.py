"""Reading the audit log: who did what, when, and why."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from services.registry.adapters.tables import AuditRecord


def list_audit(
    session: Session,
    *,
    model: str | None,
    actor: str | None,
    action: str | None,
    limit: int,
    offset: int,
) -> Sequence[AuditRecord]:
    """Newest first, optionally narrowed to one model, actor or action."""
    query = select(AuditRecord)
    if model is not None:
        query = query.where(AuditRecord.model == model)
    if actor is not None:
        query = query.where(AuditRecord.actor == actor)
    if action is not None:
        query = query.where(AuditRecord.action == action)
    query = query.order_by(col(AuditRecord.id).desc()).offset(offset).limit(limit)
    return session.exec(query).all()
