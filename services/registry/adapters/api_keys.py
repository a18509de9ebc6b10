"""API keys: random tokens, stored only as their SHA-256, each with an owner and a lifetime."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.registry.adapters.tables import ApiKey
from shared.contracts.base import utc_now
from shared.roles import Role

KEY_PREFIX = "mbk_"


def hash_key(key: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_active(row: ApiKey, now: datetime) -> bool:
    """Neither revoked nor past its expiry."""
    if row.revoked_at is not None:
        return False
    return row.expires_at is None or _utc(row.expires_at) > now


def find_active_key(session: Session, key: str) -> ApiKey | None:
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if row is None or not is_active(row, utc_now()):
        return None
    return row


def find_key_by_name(session: Session, name: str) -> ApiKey | None:
    return session.exec(select(ApiKey).where(ApiKey.name == name)).first()


def list_keys(session: Session) -> Sequence[ApiKey]:
    return session.exec(select(ApiKey).order_by(col(ApiKey.name))).all()


def create_key(
    session: Session,
    *,
    name: str,
    role: Role,
    owner: str | None = None,
    expires_at: datetime | None = None,
    key: str | None = None,
) -> str:
    """Store a key for `name` and return the token, which is shown only this once.

    `owner` (a person or team) defaults to the key's own name.
    """
    token = key or new_key()
    session.add(
        ApiKey(
            name=name,
            role=role.value,
            key_hash=hash_key(token),
            owner=owner or name,
            expires_at=expires_at,
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ValueError(f"an API key named {name!r} (or with this token) already exists") from None
    return token


def revoke_key(session: Session, name: str) -> ApiKey | None:
    """Revoke the key named `name` (idempotent); None if there is no such key."""
    row = find_key_by_name(session, name)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        session.add(row)
        session.commit()
        session.refresh(row)
    return row


def ensure_key(session: Session, *, name: str, role: Role, key: str) -> None:
    """Make sure `key` exists with `role` (used for the bootstrap admin key at start-up)."""
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if row is not None:
        return
    existing = find_key_by_name(session, name)
    if existing is not None:
        existing.key_hash = hash_key(key)
        existing.role = role.value
        existing.revoked_at = None
        existing.expires_at = None
        session.add(existing)
        session.commit()
        return
    create_key(session, name=name, role=role, key=key)
