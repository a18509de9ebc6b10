"""Use cases on deployments: promote, canary, shadow, rollback; every change leaves history.

Each change moves the model's deployment revision up by one with a compare-and-set, so of
two concurrent changes one wins and the other gets 409, never a silently lost update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select, update

from services.registry.adapters.tables import (
    Deployment,
    DeploymentRecord,
    ModelVersion,
    RegisteredModel,
)
from services.registry.domain import deployment as rules
from services.registry.domain.policy import (
    PromotionPolicy,
    decide_live_trial,
    decide_promotion,
    role_for_canary,
)
from services.registry.service_layer.context import Actor, get_model, record_change
from services.registry.service_layer.errors import Conflict, Forbidden, IntegrityFailure
from services.registry.service_layer.versions import get_version
from shared.contracts import DeploymentState, ModelEvent
from shared.contracts.base import utc_now
from shared.roles import Role

ExpectedRevision = Field(
    default=None,
    ge=0,
    description="The deployment revision the change was decided on; 409 if it moved on.",
)


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2000)
    expected_revision: int | None = ExpectedRevision


class CanaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    weight: float = Field(gt=0.0, lt=1.0, description="Share of traffic the canary serves.")
    reason: str = Field(min_length=1, max_length=2000)
    expected_revision: int | None = ExpectedRevision


class ShadowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2000)
    expected_revision: int | None = ExpectedRevision


class ReasonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    expected_revision: int | None = ExpectedRevision


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
    expected_revision: int | None,
    version: int | None = None,
) -> Deployment:
    """Apply a pure rule to the current deployment and record the result atomically.

    The row is written first, conditioned on the revision it was read at: that takes the
    row's lock before the outbox row is written, so one model's events are queued in
    revision order, and a change that lost the race is refused instead of overwriting.
    """
    assert model.id is not None
    row = _deployment_row(session, model)
    read_revision = row.revision
    try:
        rules.require_revision(read_revision, expected_revision)
        after = change(as_domain(row))
    except rules.DeploymentRuleViolation as violation:
        raise Conflict(str(violation)) from None
    revision = read_revision + 1
    claimed = session.exec(
        update(Deployment)
        .where(col(Deployment.model_id) == model.id, col(Deployment.revision) == read_revision)
        .values(
            production=after.production,
            canary=after.canary,
            canary_weight=after.canary_weight,
            shadow=after.shadow,
            revision=revision,
            updated_at=utc_now(),
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        session.rollback()
        raise Conflict(
            f"the deployment of model {model.name!r} changed while this change was decided "
            f"(it was at revision {read_revision}); read it again and retry"
        )
    session.add(
        DeploymentRecord(
            model_id=model.id,
            revision=revision,
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
        revision=revision,
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


def _require_live_trial(model: RegisteredModel, candidate: ModelVersion, *, trial: str) -> None:
    """Refuse a canary or shadow the model's policy does not consent to, like a promotion."""
    decision = decide_live_trial(
        PromotionPolicy.model_validate(model.policy),
        approved=candidate.status == "approved",
        rejected=candidate.status == "rejected",
        trial=trial,
    )
    if not decision.allowed:
        raise Forbidden(
            f"version {candidate.version} may not serve as a {trial}: {decision.reason}"
        )


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
        expected_revision=request.expected_revision,
    )


def set_canary(
    session: Session,
    actor: Actor,
    model_name: str,
    request: CanaryRequest,
    *,
    max_unreviewed_weight: float,
) -> Deployment:
    """A share of traffic for a version the policy consents to; a big share needs an approver."""
    actor.require(Role.PUBLISHER, "starting a canary")
    actor.require(
        role_for_canary(request.weight, max_unreviewed_weight=max_unreviewed_weight),
        f"a canary weight above {max_unreviewed_weight:g} (MODELBUS_MAX_CANARY_WEIGHT)",
    )
    model, candidate = get_version(session, model_name, request.version)
    _require_live_trial(model, candidate, trial="canary")
    return _apply(
        session,
        actor,
        model,
        action="canary",
        reason=request.reason,
        version=request.version,
        change=lambda current: current.with_canary(request.version, request.weight),
        expected_revision=request.expected_revision,
    )


def clear_canary(
    session: Session,
    actor: Actor,
    model_name: str,
    reason: str,
    *,
    expected_revision: int | None = None,
) -> Deployment:
    actor.require(Role.PUBLISHER, "stopping a canary")
    model = get_model(session, model_name)
    return _apply(
        session,
        actor,
        model,
        action="canary_stopped",
        reason=reason,
        change=lambda current: current.without_canary(),
        expected_revision=expected_revision,
    )


def set_shadow(
    session: Session, actor: Actor, model_name: str, request: ShadowRequest
) -> Deployment:
    """Live traffic, answers not delivered: still only for a version the policy consents to."""
    actor.require(Role.PUBLISHER, "starting a shadow")
    model, candidate = get_version(session, model_name, request.version)
    _require_live_trial(model, candidate, trial="shadow")
    return _apply(
        session,
        actor,
        model,
        action="shadow",
        reason=request.reason,
        version=request.version,
        change=lambda current: current.with_shadow(request.version),
        expected_revision=request.expected_revision,
    )


def clear_shadow(
    session: Session,
    actor: Actor,
    model_name: str,
    reason: str,
    *,
    expected_revision: int | None = None,
) -> Deployment:
    actor.require(Role.PUBLISHER, "stopping a shadow")
    model = get_model(session, model_name)
    return _apply(
        session,
        actor,
        model,
        action="shadow_stopped",
        reason=reason,
        change=lambda current: current.without_shadow(),
        expected_revision=expected_revision,
    )


def rollback(
    session: Session,
    actor: Actor,
    model_name: str,
    reason: str,
    *,
    expected_revision: int | None = None,
) -> Deployment:
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
        expected_revision=expected_revision,
    )
