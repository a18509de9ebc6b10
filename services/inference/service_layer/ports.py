"""What the serving core needs from the outside: a source of models and deployments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.inference.domain.routing import RoutingConfig
from services.inference.domain.servable import ServableModel
from shared.contracts import DeploymentState


class RegistryUnavailable(Exception):
    """The registry could not be asked (network, 5xx): retry later, never answer from it."""


class VersionNotFound(Exception):
    """The registry has no such version of the model."""


class ModelLoadFailed(Exception):
    """The version exists but cannot be served: bad hash, unsafe or malformed artifact."""


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """A registered model as the workers need it: task, serving options, deployment."""

    name: str
    task: str
    routing: RoutingConfig
    deployment: DeploymentState


class ModelSource(Protocol):
    """Where models, deployments and loaded versions come from (the registry)."""

    async def list_models(self) -> list[str]:
        """Names of every registered model."""
        ...

    async def fetch_model(self, name: str) -> ModelRecord | None:
        """The model and its current deployment; None when no such model is registered."""
        ...

    async def load_version(self, name: str, version: int) -> ServableModel:
        """Signature and hash-checked estimator of a version, ready to predict.

        Raises VersionNotFound, ModelLoadFailed or RegistryUnavailable.
        """
        ...
