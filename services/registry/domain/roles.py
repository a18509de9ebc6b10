"""API key roles and what each may do; roles are ordered, each includes the ones below."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Who may do what, from least to most powerful."""

    CLIENT = "client"
    """Predicts, sends feedback and reads its own jobs through the gateway; nothing more."""
    READER = "reader"
    """Reads the registry: models, versions, their artifacts and training data."""
    PUBLISHER = "publisher"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def includes(self, needed: Role) -> bool:
        """True when this role may do what `needed` may."""
        return self.rank >= needed.rank


_RANK = {Role.CLIENT: 0, Role.READER: 1, Role.PUBLISHER: 2, Role.APPROVER: 3, Role.ADMIN: 4}
