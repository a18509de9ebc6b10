"""Pure deployment rules: which versions serve a model, and how that may change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace


class DeploymentRuleViolation(ValueError):
    """A deployment change that would leave serving in an unsafe or meaningless state."""


class StaleRevision(DeploymentRuleViolation):
    """The change was asked against a deployment revision that is no longer current."""


def require_revision(current: int, expected: int | None) -> None:
    """A client that read revision `expected` may change that state only, not a newer one."""
    if expected is not None and expected != current:
        raise StaleRevision(
            f"the deployment is at revision {current}, not the expected {expected}; "
            "read it again and retry"
        )


@dataclass(frozen=True)
class Deployment:
    """What serves now: production, an optional weighted canary and an optional shadow."""

    production: int | None = None
    canary: int | None = None
    canary_weight: float = 0.0
    shadow: int | None = None

    def promote(self, version: int) -> Deployment:
        """`version` serves all traffic; a canary of that version is done and is cleared."""
        if version == self.production:
            raise DeploymentRuleViolation(f"version {version} already serves production")
        canary_done = self.canary == version
        return replace(
            self,
            production=version,
            canary=None if canary_done else self.canary,
            canary_weight=0.0 if canary_done else self.canary_weight,
            shadow=None if self.shadow == version else self.shadow,
        )

    def with_canary(self, version: int, weight: float) -> Deployment:
        """Send `weight` of traffic to `version`; needs a production version to compare with."""
        if self.production is None:
            raise DeploymentRuleViolation("a canary needs a production version to compare with")
        if version == self.production:
            raise DeploymentRuleViolation(f"version {version} already serves production")
        if not 0.0 < weight < 1.0:
            raise DeploymentRuleViolation(
                f"canary weight must be above 0 and below 1, got {weight}"
            )
        return replace(self, canary=version, canary_weight=weight)

    def without_canary(self) -> Deployment:
        if self.canary is None:
            raise DeploymentRuleViolation("there is no canary to remove")
        return replace(self, canary=None, canary_weight=0.0)

    def with_shadow(self, version: int) -> Deployment:
        """`version` also predicts on live traffic, but its answers are never delivered."""
        if version == self.production:
            raise DeploymentRuleViolation(f"version {version} already serves production")
        return replace(self, shadow=version)

    def without_shadow(self) -> Deployment:
        if self.shadow is None:
            raise DeploymentRuleViolation("there is no shadow to remove")
        return replace(self, shadow=None)

    def rolled_back(self, stack: Sequence[int]) -> Deployment:
        """Back to the production version before the current one; any canary stops too.

        `stack` is `production_stack(...)` of the deployment history: current version last.
        """
        if self.production is None:
            raise DeploymentRuleViolation("nothing serves production, so nothing to roll back")
        previous = stack[-2] if len(stack) >= 2 and stack[-1] == self.production else None
        if previous is None:
            raise DeploymentRuleViolation(
                f"version {self.production} is the first production version; "
                "there is no earlier one to roll back to"
            )
        return replace(self, production=previous, canary=None, canary_weight=0.0)


ROLLBACK = "rollback"


def production_stack(history: Sequence[tuple[str, int | None]]) -> list[int]:
    """Production versions still to fall back to, current last, from (action, production) rows.

    A promotion pushes, a rollback pops: rolling back twice after 1 -> 2 -> 3 lands on 1,
    never back on the version just rolled back from.
    """
    stack: list[int] = []
    for action, production in history:
        if action == ROLLBACK:
            if stack:
                stack.pop()
        elif production is not None and (not stack or stack[-1] != production):
            stack.append(production)
    return stack
