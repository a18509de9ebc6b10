"""Roles are ordered; a reviewer sits between reader and publisher."""

from __future__ import annotations

import pytest

from shared.clients.authentication import Caller
from shared.roles import Role, role_includes


def test_roles_are_ordered() -> None:
    assert [role.value for role in sorted(Role, key=lambda role: role.rank)] == [
        "client",
        "reader",
        "reviewer",
        "publisher",
        "approver",
        "admin",
    ]
    assert Role.ADMIN.includes(Role.APPROVER)
    assert Role.APPROVER.includes(Role.PUBLISHER)
    assert not Role.PUBLISHER.includes(Role.APPROVER)
    assert not Role.READER.includes(Role.PUBLISHER)


def test_a_reviewer_reads_and_reviews_but_does_not_publish() -> None:
    assert Role.REVIEWER.includes(Role.READER)
    assert Role.REVIEWER.includes(Role.REVIEWER)
    assert not Role.REVIEWER.includes(Role.PUBLISHER)
    assert not Role.READER.includes(Role.REVIEWER)
    assert all(role.includes(Role.REVIEWER) for role in (Role.PUBLISHER, Role.APPROVER, Role.ADMIN))


@pytest.mark.parametrize(
    ("role", "reviews"),
    [
        ("client", False),
        ("reader", False),
        ("reviewer", True),
        ("publisher", True),
        ("admin", True),
        ("superuser", False),
        ("", False),
    ],
)
def test_a_role_read_as_text_includes_by_rank_and_unknown_ones_nothing(
    role: str, reviews: bool
) -> None:
    assert role_includes(role, Role.REVIEWER) is reviews
    assert Caller(name="k", role=role, key_hash="h").has_role(Role.REVIEWER) is reviews
