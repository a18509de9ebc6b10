"""Which version answers a request: pinned, production, sticky canary, shadow, cascade.

Canary assignment hashes the model and the routing key to a point in [0, 1): the same
key always lands on the same side of a given weight, and raising the weight only moves
keys from production to the canary, never back.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, ValidationError

from services.inference.domain.answers import Classified, Output
from shared.contracts import DeploymentState
from shared.contracts.predictions import Variant
from shared.routing_options import CascadeConfig, RoutingOptions

__all__ = [
    "CascadeConfig",
    "Route",
    "RoutingConfig",
    "choose_route",
    "confidence",
    "routing_point",
    "small_answer_is_final",
]

log = logging.getLogger(__name__)
_POINTS = float(2**64)


def routing_point(model: str, routing_key: str) -> float:
    """A deterministic, uniformly spread point in [0, 1) for this model and key."""
    digest = hashlib.blake2b(
        f"{model}\x1f{routing_key}".encode(), digest_size=8, person=b"mb-canary"
    ).digest()
    return int.from_bytes(digest, "big") / _POINTS


@dataclass(frozen=True, slots=True)
class Route:
    """The version that answers a request, and the variant it answers as."""

    version: int
    variant: Variant
    pinned: bool = False


def choose_route(
    *, model: str, pinned: int | None, routing_key: str, deployment: DeploymentState
) -> Route | None:
    """The serving version for a request; None when nothing serves the model.

    A pinned version answers as the canary if it is the canary, else as production
    (the caller asked for it, so it is delivered).
    """
    if pinned is not None:
        return Route(pinned, "canary" if pinned == deployment.canary else "production", True)
    if deployment.production is None:
        return None
    if (
        deployment.canary is not None
        and deployment.canary_weight > 0.0
        and routing_point(model, routing_key) < deployment.canary_weight
    ):
        return Route(deployment.canary, "canary")
    return Route(deployment.production, "production")


class RoutingConfig(RoutingOptions):
    """Per-model serving options, from the registry model's `routing` field."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_registry(cls, model: str, routing: Mapping[str, Any] | None) -> RoutingConfig:
        """Parse leniently: a malformed option is logged and ignored rather than stop serving."""
        try:
            return cls.model_validate(dict(routing or {}))
        except ValidationError as error:
            log.warning(
                "ignoring malformed routing options",
                extra={"model": model, "routing": routing, "error": str(error)},
            )
            return cls()

    def cascade_for(self, route: Route) -> CascadeConfig | None:
        """The cascade in front of this route, if any: never for pinned requests (the
        caller chose a version) nor when the routed version is the small one itself."""
        cascade = self.cascade
        if cascade is None or route.pinned or route.version == cascade.small_version:
            return None
        return cascade


def confidence(output: Output) -> float:
    """How sure a classifier is: its largest class probability (0 without probabilities)."""
    if isinstance(output, Classified) and output.probabilities:
        return max(output.probabilities.values())
    return 0.0


def small_answer_is_final(output: Output, cascade: CascadeConfig) -> bool:
    """Whether the small model's answer stands, or the big model must answer instead."""
    return confidence(output) >= cascade.min_confidence
