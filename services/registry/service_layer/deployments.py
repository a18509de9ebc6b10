"""Use cases on deployments: promote, canary, shadow, rollback; every change leaves history."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from services.registry.adapters.tables import Deployment, DeploymentRecord, RegisteredModel
from services.registry.domain import deployment as rules
from services.registry.domain.policy import PromotionPolicy, decide_promotion
from services.registry.domain.roles import Role
from services.registry.service_layer.context import Actor, get_model, record_change
from services.registry.service_layer.errors import Conflict, Forbidden, IntegrityFailure
from services.registry.service_layer.versions import get_version
from shared.contracts import DeploymentState, ModelEvent


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2000)


class CanaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    weight: float = Field(gt=0.0, lt=1.0, description="Share of traffic the canary serves.")
    reason: str = Field(min_length=1, max_length=2000)


class ShadowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2000)


class ReasonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


def _deployment_row(session: Session, model: RegisteredModel) -> Deployment:
    row = session.get(Deployment, model.id)
    if row is None:
        raise IntegrityFailure(f"model {model.name!r} has no deployment row")
    return row


def as_domain(row: Deployment) -> rules.Deployment:
    return rules.Deployment(
        production=row.production,
        canary=row.canary,
        canary_weight=row.canary_weight,
        shadow=row.shadow,
    )


def current_deployment(session: Session, model_name: str) -> Deployment:
    return _deployment_row(session, get_model(session, model_name))


def history(
    session: Session, model_name: str, *, limit: int, offset: int
) -> Sequence[DeploymentRecord]:
    model = get_model(session, model_name)
    query = (
        select(DeploymentRecord)
        .where(DeploymentRecord.model_id == model.id)
        .order_by(col(DeploymentRecord.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return session.exec(query).all()


def _production_stack(session: Session, model: RegisteredModel) -> list[int]:
    query = (
        select(DeploymentRecord.action, DeploymentRecord.production)
        .where(DeploymentRecord.model_id == model.id)
        .order_by(col(DeploymentRecord.id))
    )
    return rules.production_stack([(action, version) for action, version in session.exec(query)])


def _apply(
    session: Session,
    actor: Actor,
    model: RegisteredModel,
    *,
    action: str,
    reason: str,
    change: Callable[[rules.Deployment], rules.Deployment],
    version: int | None = None,
) -> Deployment:
    """Apply a pure rule to the current deployment and record the result atomically."""
    row = _deployment_row(session, model)
    try:
        after = change(as_domain(row))
    except rules.DeploymentRuleViolation as violation:
        raise Conflict(str(violation)) from None
    row.production, row.canary = after.production, after.canary
    row.canary_weight, row.shadow = after.canary_weight, after.shadow
    row.revision += 1
    session.add(row)
    assert model.id is not None
    session.add(
        DeploymentRecord(
            model_id=model.id,
            action=action,
            production=after.production,
            canary=after.canary,
            canary_weight=after.canary_weight,
            shadow=after.shadow,
            actor=actor.name,
            reason=reason,
        )
    )
    state = DeploymentState(
        production=after.production,
        canary=after.canary,
        canary_weight=after.canary_weight,
        shadow=after.shadow,
    )
    record_change(
        session,
        actor,
        action=f"deployment.{action}",
        model=model.name,
        version=version,
        reason=reason,
        details=state.model_dump(),
        event=ModelEvent(
            event_type="deployment.changed",
            model=model.name,
            version=version,
            deployment=state,
            actor=actor.name,
            reason=reason,
        ),
    )
    session.commit()
    session.refresh(row)
    return row


def promote(session: Session, actor: Actor, model_name: str, request: PromoteRequest) -> Deployment:
    """Production switches to the version, if approved or allowed by the model's guardrail."""
    actor.require(Role.PUBLISHER, "promoting a version")
    model, candidate = get_version(session, model_name, request.version)
    row = _deployment_row(session, model)
    production_metrics = None
    if row.production is not None:
        production_metrics = get_version(session, model_name, row.production)[1].metrics
    decision = decide_promotion(
        PromotionPolicy.model_validate(model.policy),
        approved=candidate.status == "approved",
        rejected=candidate.status == "rejected",
        candidate_metrics=candidate.metrics,
        production_metrics=production_metrics,
    )
    if not decision.allowed:
        raise Forbidden(f"version {request.version} may not be promoted: {decision.reason}")
    return _apply(
        session,
        actor,
        model,
        action="promote",
        reason=f"{request.reason} ({decision.reason})",
        version=request.version,
        change=lambda current: current.promote(request.version),
    )


def set_canary(
    session: Session, actor: Actor, model_name: str, request: CanaryRequest
) -> Deployment:
    actor.require(Role.PUBLISHER, "starting a canary")
    model, candidate = get_version(session, model_name, request.version)
    if candidate.status == "rejected":
        raise Forbidden(f"version {request.version} was rejected and may not serve traffic")
    return _apply(
        session,
        actor,
        model,
        action="canary",
        reason=request.reason,
        version=request.version,
        change=lambda current: current.with_canary(request.version, request.weight),
    )


def clear_canary(session: Session, actor: Actor, model_name: str, reason: str) -> Deployment:
    actor.require(Role.PUBLISHER, "stopping a canary")
    model = get_model(session, model_name)
    return _apply(
        session,
        actor,
        model,
        action="canary_stopped",
        reason=reason,
        change=lambda current: current.without_canary(),
    )


def set_shadow(
    session: Session, actor: Actor, model_name: str, request: ShadowRequest
) -> Deployment:
    actor.require(Role.PUBLISHER, "starting a shadow")
    model, _ = get_version(session, model_name, request.version)
    return _apply(
        session,
        actor,
        model,
        action="shadow",
        reason=request.reason,
        version=request.version,
        change=lambda current: current.with_shadow(request.version),
    )


def clear_shadow(session: Session, actor: Actor, model_name: str, reason: str) -> Deployment:
    actor.require(Role.PUBLISHER, "stopping a shadow")
    model = get_model(session, model_name)
    return _apply(
        session,
        actor,
        model,
        action="shadow_stopped",
        reason=reason,
        change=lambda current: current.without_shadow(),
    )


def rollback(session: Session, actor: Actor, model_name: str, reason: str) -> Deployment:
    """One call back to the previous production version; any canary stops."""
    actor.require(Role.PUBLISHER, "rolling back")
    model = get_model(session, model_name)
    stack = _production_stack(session, model)
    row = _deployment_row(session, model)
    return _apply(
        session,
        actor,
        model,
        action=rules.ROLLBACK,
        reason=reason,
        version=row.production,
        change=lambda current: current.rolled_back(stack),
    )
