"""Use cases on registered models: create, update, list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.registry.adapters.tables import Deployment, RegisteredModel
from services.registry.domain.policy import PromotionPolicy
from services.registry.domain.roles import Role
from services.registry.service_layer.context import Actor, get_model, record_change
from services.registry.service_layer.errors import Conflict
from shared.contracts import ModelEvent
from shared.contracts.base import ModelName

Task = Literal["classification", "regression"]


class ModelCreate(BaseModel):
    """A new model: a name, the task it solves, and its promotion policy."""

    model_config = ConfigDict(extra="forbid")

    name: ModelName
    task: Task
    description: str = Field(default="", max_length=2000)
    policy: PromotionPolicy = Field(default_factory=PromotionPolicy)
    routing: dict[str, Any] = Field(
        default_factory=dict, description="Serving options the inference workers read."
    )


class ModelUpdate(BaseModel):
    """Fields of a model that may change after registration."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=2000)
    policy: PromotionPolicy | None = None
    routing: dict[str, Any] | None = None
    reason: str = Field(default="", max_length=2000)


def create_model(session: Session, actor: Actor, request: ModelCreate) -> RegisteredModel:
    actor.require(Role.PUBLISHER, "registering a model")
    model = RegisteredModel(
        name=request.name,
        task=request.task,
        description=request.description,
        policy=request.policy.model_dump(),
        routing=request.routing,
        created_by=actor.name,
    )
    session.add(model)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"a model named {request.name!r} is already registered") from None
    assert model.id is not None
    session.add(Deployment(model_id=model.id))
    record_change(
        session,
        actor,
        action="model.registered",
        model=model.name,
        details={"task": model.task, "policy": model.policy},
        event=ModelEvent(event_type="model.registered", model=model.name, actor=actor.name),
    )
    session.commit()
    session.refresh(model)
    return model


def update_model(session: Session, actor: Actor, name: str, update: ModelUpdate) -> RegisteredModel:
    model = get_model(session, name)
    needed = Role.APPROVER if update.policy is not None else Role.PUBLISHER
    actor.require(needed, "changing a model's promotion policy" if update.policy else "editing")
    changes: dict[str, Any] = {}
    if update.description is not None:
        model.description = update.description
        changes["description"] = update.description
    if update.policy is not None:
        model.policy = update.policy.model_dump()
        changes["policy"] = model.policy
    if update.routing is not None:
        model.routing = update.routing
        changes["routing"] = update.routing
    session.add(model)
    record_change(
        session,
        actor,
        action="model.updated",
        model=name,
        reason=update.reason,
        details=changes,
        event=ModelEvent(
            event_type="model.updated", model=name, actor=actor.name, reason=update.reason
        ),
    )
    session.commit()
    session.refresh(model)
    return model


def list_models(session: Session, *, limit: int, offset: int) -> Sequence[RegisteredModel]:
    query = select(RegisteredModel).order_by(RegisteredModel.name).offset(offset).limit(limit)
    return session.exec(query).all()
