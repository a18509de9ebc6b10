"""Use cases on API keys: issue (with a webhook secret), list, revoke, rotate the secret."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlmodel import Session

from services.registry.adapters import api_keys
from services.registry.adapters.tables import ApiKey
from services.registry.service_layer.context import Actor, record_change
from services.registry.service_layer.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unavailable,
)
from shared.contracts.base import utc_now
from shared.jobstore.webhook_secrets import IssuedSecret, WebhookSecretStore
from shared.roles import Role

log = logging.getLogger(__name__)
NAME_PATTERN = r"^[A-Za-z0-9._@-]+$"


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    role: Role
    owner: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=NAME_PATTERN,
        description="The person or team the key belongs to (default: the key's name). "
        "Keys of one owner cannot approve each other's versions.",
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the key stops working (with a time zone)."
    )
    ttl_seconds: int | None = Field(
        default=None, ge=60, le=10 * 365 * 86_400, description="Or: lifetime from now."
    )

    @model_validator(mode="after")
    def _one_expiry(self) -> ApiKeyCreate:
        if self.expires_at is not None and self.ttl_seconds is not None:
            raise ValueError("send expires_at or ttl_seconds, not both")
        return self


@dataclass(frozen=True)
class IssuedKey:
    """A new key and its webhook secret, shown this once."""

    key: ApiKey
    token: str
    webhook_secret: str | None


def _expiry(request: ApiKeyCreate, now: datetime) -> datetime | None:
    if request.ttl_seconds is not None:
        return now + timedelta(seconds=request.ttl_seconds)
    if request.expires_at is not None and request.expires_at <= now:
        raise InvalidInput(f"expires_at {request.expires_at.isoformat()} is already past")
    return request.expires_at


def create_key(
    session: Session,
    secrets: WebhookSecretStore | None,
    actor: Actor,
    request: ApiKeyCreate,
    *,
    overlap: timedelta,
) -> IssuedKey:
    """Issue a key (admin only) and, where the job store is configured, its webhook secret."""
    actor.require(Role.ADMIN, "issuing API keys")
    expires_at = _expiry(request, utc_now())
    try:
        token = api_keys.create_key(
            session,
            name=request.name,
            role=request.role,
            owner=request.owner,
            expires_at=expires_at,
        )
    except ValueError as error:
        raise Conflict(str(error)) from None
    key = api_keys.find_key_by_name(session, request.name)
    assert key is not None
    try:
        issued = secrets.rotate(key.name, overlap=overlap) if secrets is not None else None
    except Exception:
        # A key without its secret would have its webhooks signed with the default one.
        session.delete(key)
        session.commit()
        log.exception("issuing a webhook secret failed; the key was not kept")
        raise Unavailable(
            "the job store holding webhook secrets did not answer; no key was issued, retry"
        ) from None
    record_change(
        session,
        actor,
        action="api_key.created",
        model=None,
        details={"key": key.name, "role": key.role, "owner": key.owner},
    )
    session.commit()
    session.refresh(key)
    return IssuedKey(
        key=key, token=token, webhook_secret=issued.secret if issued is not None else None
    )


def list_keys(actor: Actor, session: Session) -> Sequence[ApiKey]:
    actor.require(Role.ADMIN, "listing API keys")
    return api_keys.list_keys(session)


def _may_manage(actor: Actor, name: str, action: str) -> None:
    """Admins manage every key; any key may manage itself."""
    if actor.name != name and not actor.role.includes(Role.ADMIN):
        raise Forbidden(f"{action} of key {name!r} needs the admin role or that key itself")


def revoke_key(session: Session, actor: Actor, name: str) -> ApiKey:
    """Revoke a key at once (admin, or the key itself); idempotent."""
    _may_manage(actor, name, "revoking")
    key = api_keys.revoke_key(session, name)
    if key is None:
        raise NotFound(f"no API key named {name!r}")
    record_change(session, actor, action="api_key.revoked", model=None, details={"key": name})
    session.commit()
    session.refresh(key)
    return key


def rotate_webhook_secret(
    session: Session,
    secrets: WebhookSecretStore | None,
    actor: Actor,
    name: str,
    *,
    overlap: timedelta,
) -> IssuedSecret:
    """A new webhook secret for key `name`; the old one still signs for `overlap`."""
    _may_manage(actor, name, "rotating the webhook secret")
    if secrets is None:
        raise Unavailable(
            "webhook secrets need MODELBUS_JOBS_DATABASE_URL on the registry (the job store "
            "the delivery service reads)"
        )
    key = api_keys.find_key_by_name(session, name)
    if key is None:
        raise NotFound(f"no API key named {name!r}")
    issued = secrets.rotate(name, overlap=overlap)
    record_change(
        session,
        actor,
        action="webhook_secret.rotated",
        model=None,
        details={"key": name, "overlap_seconds": overlap.total_seconds()},
    )
    session.commit()
    return issued
