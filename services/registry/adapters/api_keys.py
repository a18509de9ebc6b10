"""API keys: random tokens, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.registry.adapters.tables import ApiKey
from services.registry.domain.roles import Role

KEY_PREFIX = "mbk_"


def hash_key(key: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def find_active_key(session: Session, key: str) -> ApiKey | None:
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row


def create_key(session: Session, *, name: str, role: Role, key: str | None = None) -> str:
    """Store a key for `name` and return the token, which is shown only this once."""
    token = key or new_key()
    session.add(ApiKey(name=name, role=role.value, key_hash=hash_key(token)))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ValueError(f"an API key named {name!r} (or with this token) already exists") from None
    return token


def ensure_key(session: Session, *, name: str, role: Role, key: str) -> None:
    """Make sure `key` exists with `role` (used for the bootstrap admin key at start-up)."""
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if row is not None:
        return
    existing = session.exec(select(ApiKey).where(ApiKey.name == name)).first()
    if existing is not None:
        existing.key_hash = hash_key(key)
        existing.role = role.value
        existing.revoked_at = None
        session.add(existing)
        session.commit()
        return
    create_key(session, name=name, role=role, key=key)
