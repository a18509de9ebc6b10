"""API key roles and what each may do; roles are ordered, each includes the ones below.

The registry issues and enforces them; other services read them off an authenticated caller.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Who may do what, from least to most powerful."""

    CLIENT = "client"
    """Predicts, sends feedback and reads its own jobs through the gateway; nothing more."""
    READER = "reader"
    """Reads the registry: models, versions, their artifacts and training data."""
    REVIEWER = "reviewer"
    """Reads the registry and labels predictions, any caller's (human review)."""
    PUBLISHER = "publisher"
    """Registers models, versions and datasets and rolls versions out; may also review."""
    APPROVER = "approver"
    """Approves versions for production and sets a model's policies."""
    ADMIN = "admin"
    """Issues and revokes API keys."""

    @property
    def rank(self) -> int:
        return _RANK[self]

    def includes(self, needed: Role) -> bool:
        """True when this role may do what `needed` may."""
        return self.rank >= needed.rank


_RANK = {role: rank for rank, role in enumerate(Role)}


def role_includes(role: str, needed: Role) -> bool:
    """Whether a role named in text (as another service reads it) includes `needed`; a name
    this code does not know includes nothing."""
    try:
        return Role(role).includes(needed)
    except ValueError:
        return False
