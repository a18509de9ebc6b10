"""What every registry use case shares: who acts, and how changes are recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from services.registry.adapters.tables import AuditRecord, OutboxEvent, RegisteredModel
from services.registry.service_layer.errors import Forbidden, NotFound
from shared.contracts import ModelEvent
from shared.roles import Role
from shared.topics import MODEL_EVENTS


@dataclass(frozen=True)
class Actor:
    """The authenticated caller: an API key's name, role and owner (a person or team)."""

    name: str
    role: Role
    owner: str = ""

    @property
    def accountable(self) -> str:
        """Who answers for what the key does: its owner, else the key itself."""
        return self.owner or self.name

    def require(self, needed: Role, action: str) -> None:
        if not self.role.includes(needed):
            raise Forbidden(
                f"{action} needs the {needed.value} role; key {self.name!r} has {self.role.value}"
            )


def record_change(
    session: Session,
    actor: Actor,
    *,
    action: str,
    model: str | None,
    version: int | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    event: ModelEvent | None = None,
) -> None:
    """Audit the change and queue its model event, in the caller's transaction."""
    session.add(
        AuditRecord(
            actor=actor.name,
            action=action,
            model=model,
            version=version,
            reason=reason,
            details=details or {},
        )
    )
    if event is not None:
        session.add(
            OutboxEvent(topic=MODEL_EVENTS.name, key=event.model, payload=event.model_dump_json())
        )


def get_model(session: Session, name: str) -> RegisteredModel:
    model = session.exec(select(RegisteredModel).where(RegisteredModel.name == name)).first()
    if model is None:
        raise NotFound(f"no model named {name!r} is registered")
    return model
