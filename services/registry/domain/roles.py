"""API key roles and what each may do; roles are ordered, each includes the ones below."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Who may do what, from least to most powerful."""

    READER = "reader"
    PUBLISHER = "publisher"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def includes(self, needed: Role) -> bool:
        """True when this role may do what `needed` may."""
        return self.rank >= needed.rank


_RANK = {Role.READER: 0, Role.PUBLISHER: 1, Role.APPROVER: 2, Role.ADMIN: 3}
