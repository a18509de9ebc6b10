"""Use cases on registered models: create, update, list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.registry.adapters.tables import Deployment, ModelVersion, RegisteredModel
from services.registry.domain.feedback import (
    feedback_policy_problem,
    role_for_new_feedback_policy,
)
from services.registry.domain.policy import (
    PromotionPolicy,
    decide_promotion,
    role_for_new_policy,
    role_for_routing_change,
)
from services.registry.service_layer.context import Actor, get_model, record_change
from services.registry.service_layer.errors import Conflict, Forbidden, InvalidInput
from shared.contracts import ModelEvent
from shared.contracts.base import ModelName
from shared.feedback_policy import FeedbackPolicy
from shared.roles import Role
from shared.routing_options import RoutingOptions

Task = Literal["classification", "regression"]


class ModelCreate(BaseModel):
    """A new model: a name, the task it solves, and its promotion policy."""

    model_config = ConfigDict(extra="forbid")

    name: ModelName
    task: Task
    description: str = Field(default="", max_length=2000)
    policy: PromotionPolicy = Field(
        default_factory=PromotionPolicy,
        description="Promotion rules; auto-promote needs the approver role.",
    )
    routing: RoutingOptions = Field(
        default_factory=RoutingOptions,
        description="Serving options the inference workers read (no cascade before versions).",
    )
    feedback: FeedbackPolicy | None = Field(
        default=None,
        description="How feedback becomes labels and what is reviewed (default if omitted); "
        "letting unreviewed weak signals train needs the approver role.",
    )


class ModelUpdate(BaseModel):
    """Fields of a model that may change after registration."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=2000)
    policy: PromotionPolicy | None = None
    routing: RoutingOptions | None = None
    feedback: FeedbackPolicy | None = Field(
        default=None, description="A new feedback policy (approver role)."
    )
    reason: str = Field(default="", max_length=2000)


def create_model(session: Session, actor: Actor, request: ModelCreate) -> RegisteredModel:
    actor.require(Role.PUBLISHER, "registering a model")
    actor.require(role_for_new_policy(request.policy), "registering a model with auto-promote")
    if request.feedback is not None:
        actor.require(
            role_for_new_feedback_policy(request.feedback),
            "registering a model whose feedback policy trains on unreviewed weak signals",
        )
        _check_feedback(request.feedback, request.task)
    if request.routing.cascade is not None:
        raise InvalidInput(
            "routing.cascade names a small version, and a new model has no versions yet; "
            "set it with PATCH once that version is registered"
        )
    model = RegisteredModel(
        name=request.name,
        task=request.task,
        description=request.description,
        policy=request.policy.model_dump(),
        routing=_stored(request.routing),
        feedback=request.feedback.model_dump() if request.feedback is not None else None,
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
        details={"task": model.task, "policy": model.policy, "feedback": model.feedback},
        event=ModelEvent(event_type="model.registered", model=model.name, actor=actor.name),
    )
    session.commit()
    session.refresh(model)
    return model


def update_model(session: Session, actor: Actor, name: str, update: ModelUpdate) -> RegisteredModel:
    model = get_model(session, name)
    actor.require(Role.PUBLISHER, "editing a model")
    before = PromotionPolicy.model_validate(model.policy)
    after = update.policy or before
    if update.policy is not None:
        actor.require(Role.APPROVER, "changing a model's promotion policy")
    if update.routing is not None:
        # Either policy needing approval decides, so a policy change cannot dodge it.
        for policy in (before, after):
            actor.require(
                role_for_routing_change(policy),
                "changing the routing of a model whose promotion policy needs approval",
            )
        _check_routing(session, model, update.routing, policy=after)
    if update.feedback is not None:
        actor.require(Role.APPROVER, "changing a model's feedback policy")
        _check_feedback(update.feedback, model.task)
    changes: dict[str, Any] = {}
    if update.description is not None:
        model.description = update.description
        changes["description"] = update.description
    if update.policy is not None:
        model.policy = update.policy.model_dump()
        changes["policy"] = model.policy
    if update.routing is not None:
        changes["routing"] = {"from": model.routing, "to": _stored(update.routing)}
        model.routing = _stored(update.routing)
    if update.feedback is not None:
        changes["feedback"] = {"from": model.feedback, "to": update.feedback.model_dump()}
        model.feedback = update.feedback.model_dump()
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


def _check_feedback(policy: FeedbackPolicy, task: str) -> None:
    problem = feedback_policy_problem(policy, task)
    if problem is not None:
        raise InvalidInput(problem)


def _stored(routing: RoutingOptions) -> dict[str, Any]:
    return routing.model_dump(exclude_none=True)


def _check_routing(
    session: Session, model: RegisteredModel, routing: RoutingOptions, *, policy: PromotionPolicy
) -> None:
    """A cascade's small version answers live traffic: it must exist and pass the policy
    exactly as a promotion to production would."""
    cascade = routing.cascade
    if cascade is None:
        return
    if model.task != "classification":
        raise InvalidInput(
            f"routing.cascade needs class probabilities; model {model.name!r} is a {model.task}"
        )
    small = _version_row(session, model, cascade.small_version)
    if small is None:
        raise InvalidInput(
            f"routing.cascade.small_version: model {model.name!r} has no version "
            f"{cascade.small_version}"
        )
    deployment = session.get(Deployment, model.id)
    production = None
    if deployment is not None and deployment.production is not None:
        production = _version_row(session, model, deployment.production)
    decision = decide_promotion(
        policy,
        approved=small.status == "approved",
        rejected=small.status == "rejected",
        candidate_metrics=small.metrics,
        production_metrics=production.metrics if production is not None else None,
    )
    if not decision.allowed:
        raise Forbidden(
            f"version {cascade.small_version} may not answer as the cascade's small model: "
            f"{decision.reason}"
        )


def _version_row(session: Session, model: RegisteredModel, version: int) -> ModelVersion | None:
    query = select(ModelVersion).where(
        ModelVersion.model_id == model.id, ModelVersion.version == version
    )
    return session.exec(query).first()


def list_models(session: Session, *, limit: int, offset: int) -> Sequence[RegisteredModel]:
    query = select(RegisteredModel).order_by(RegisteredModel.name).offset(offset).limit(limit)
    return session.exec(query).all()
