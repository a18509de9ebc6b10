"""Models, deployments and artifacts from the registry's HTTP API, off the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from pydantic import ValidationError

from services.inference.domain.routing import RoutingConfig
from services.inference.domain.servable import ServableModel
from services.inference.service_layer.ports import (
    ModelLoadFailed,
    ModelRecord,
    RegistryUnavailable,
    VersionNotFound,
)
from shared.clients.registry import RegistryCallFailed, RegistryClient
from shared.contracts import DeploymentState
from shared.model_files import ModelFileError, load_model
from shared.signature import InputSignature

NOT_FOUND = 404
# The registry answers 500 integrity_failure when stored bytes no longer match their hash:
# that version will not get better by retrying.
INTEGRITY_FAILURE = "integrity_failure"


class RegistryModelSource:
    """The `ModelSource` port over a blocking RegistryClient; every call runs in a thread."""

    def __init__(self, client: RegistryClient) -> None:
        self._client = client

    def close(self) -> None:
        self._client.close()

    async def whoami(self) -> dict[str, Any]:
        """Who the configured key is, so a wrong key fails at start-up, not per batch.

        Raises RegistryCallFailed (401/403) for a rejected key, RegistryUnavailable when
        the registry cannot be reached yet.
        """
        return await asyncio.to_thread(self._whoami)

    def _whoami(self) -> dict[str, Any]:
        try:
            return self._client.whoami()
        except RegistryCallFailed as failure:
            if failure.status_code >= 500:
                raise RegistryUnavailable(str(failure)) from failure
            raise
        except httpx.HTTPError as error:
            raise RegistryUnavailable(f"registry unreachable: {error!r}") from error

    async def list_models(self) -> list[str]:
        models = await asyncio.to_thread(self._call, self._client.models)
        return [str(model["name"]) for model in models]

    async def fetch_model(self, name: str) -> ModelRecord | None:
        return await asyncio.to_thread(self._fetch_model, name)

    async def load_version(self, name: str, version: int) -> ServableModel:
        return await asyncio.to_thread(self._load_version, name, version)

    def _fetch_model(self, name: str) -> ModelRecord | None:
        try:
            model = self._call(self._client.model, name)
            deployment = self._call(self._client.deployment, name)
        except RegistryCallFailed as failure:
            if failure.status_code == NOT_FOUND:
                return None
            raise RegistryUnavailable(str(failure)) from failure
        return ModelRecord(
            name=name,
            task=str(model["task"]),
            routing=RoutingConfig.from_registry(name, model.get("routing")),
            deployment=DeploymentState.model_validate(deployment),
        )

    def _load_version(self, name: str, version: int) -> ServableModel:
        try:
            described = self._call(self._client.version, name, version)
            artifact = self._call(self._client.artifact, name, version)
        except RegistryCallFailed as failure:
            if failure.status_code == NOT_FOUND:
                raise VersionNotFound(f"model {name!r} has no version {version}") from None
            if failure.code == INTEGRITY_FAILURE:
                raise ModelLoadFailed(failure.message) from None
            raise RegistryUnavailable(str(failure)) from failure
        try:
            signature = InputSignature.model_validate(described["signature"])
            estimator = load_model(artifact, expected_sha256=described["artifact"]["sha256"])
        except (ModelFileError, ValidationError, KeyError, TypeError) as error:
            raise ModelLoadFailed(f"{type(error).__name__}: {error}") from None
        return ServableModel.wrap(
            model=name,
            version=version,
            signature=signature,
            estimator=estimator,
            artifact_bytes=len(artifact),
            rejected=described.get("status") == "rejected",
        )

    @staticmethod
    def _call(method: Any, *args: Any) -> Any:
        """Run a client call; network trouble and server errors become RegistryUnavailable."""
        try:
            return method(*args)
        except RegistryCallFailed as failure:
            if failure.status_code == NOT_FOUND or failure.code == INTEGRITY_FAILURE:
                raise
            if failure.status_code >= 500 or failure.status_code in (401, 403, 429):
                raise RegistryUnavailable(str(failure)) from failure
            raise
        except httpx.HTTPError as error:
            raise RegistryUnavailable(f"registry unreachable: {error!r}") from error
