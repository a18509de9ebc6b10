"""Pure deployment rules: promotion, canary, shadow and rollback."""

from __future__ import annotations

import pytest

from services.registry.domain.deployment import (
    Deployment,
    DeploymentRuleViolation,
    StaleRevision,
    production_stack,
    require_revision,
)


def test_promoting_the_canary_ends_the_canary() -> None:
    deployment = Deployment(production=1).with_canary(2, 0.1).promote(2)
    assert deployment == Deployment(production=2)


def test_promoting_another_version_keeps_the_canary_running() -> None:
    deployment = Deployment(production=1).with_canary(2, 0.2).promote(3)
    assert (deployment.production, deployment.canary, deployment.canary_weight) == (3, 2, 0.2)


def test_promoting_the_shadow_ends_the_shadow() -> None:
    assert Deployment(production=1, shadow=2).promote(2).shadow is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.promote(1), "already serves production"),
        (lambda d: d.with_canary(1, 0.1), "already serves production"),
        (lambda d: d.with_canary(2, 0.0), "above 0 and below 1"),
        (lambda d: d.with_canary(2, 1.0), "above 0 and below 1"),
        (lambda d: d.without_canary(), "no canary"),
        (lambda d: d.without_shadow(), "no shadow"),
        (lambda d: d.with_shadow(1), "already serves production"),
    ],
)
def test_meaningless_changes_are_refused(change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DeploymentRuleViolation, match=message):
        change(Deployment(production=1))


def test_canary_needs_production() -> None:
    with pytest.raises(DeploymentRuleViolation, match="needs a production version"):
        Deployment().with_canary(1, 0.5)


def test_rollback_goes_to_the_previous_production_and_stops_the_canary() -> None:
    deployment = Deployment(production=3, canary=4, canary_weight=0.1, shadow=5)
    rolled = deployment.rolled_back([1, 2, 3])
    assert rolled == Deployment(production=2, shadow=5)


def test_rollback_needs_an_earlier_version() -> None:
    with pytest.raises(DeploymentRuleViolation, match="first production version"):
        Deployment(production=1).rolled_back([1])
    with pytest.raises(DeploymentRuleViolation, match="nothing serves"):
        Deployment().rolled_back([])


def test_production_stack_pushes_promotions_and_pops_rollbacks() -> None:
    history = [("promote", 1), ("canary", 1), ("promote", 2), ("promote", 3)]
    assert production_stack(history) == [1, 2, 3]
    assert production_stack([*history, ("rollback", 2)]) == [1, 2]
    assert production_stack([*history, ("rollback", 2), ("rollback", 1)]) == [1]
    assert production_stack([("promote", 1), ("promote", 2), ("rollback", 1), ("promote", 3)]) == [
        1,
        3,
    ]


def test_a_change_against_a_stale_revision_is_refused() -> None:
    require_revision(3, None)
    require_revision(3, 3)
    with pytest.raises(StaleRevision, match="at revision 3, not the expected 2"):
        require_revision(3, 2)
    assert issubclass(StaleRevision, DeploymentRuleViolation)
