"""The registry seen from the gateway: what serves and what it accepts.

Every answer is cached; `model-events` invalidate a model's entries as soon as it changes,
and a TTL bounds staleness should an event be missed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import ValidationError

from services.gateway.service_layer.errors import (
    Unavailable,
    UnknownModel,
    UnknownVersion,
)
from shared.contracts import DeploymentState
from shared.expiring_cache import ExpiringCache
from shared.signature import InputSignature
from shared.single_flight import SingleFlight

log = logging.getLogger(__name__)
Clock = Callable[[], float]


class _NotFound(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500]


async def _get_json(http: httpx.AsyncClient, path: str, **kwargs: Any) -> Any:
    """GET from the registry; 404 becomes _NotFound, any other failure Unavailable."""
    try:
        response = await http.get(path, **kwargs)
    except httpx.HTTPError as error:
        log.warning("registry call failed", extra={"path": path, "error": repr(error)})
        raise Unavailable(f"the model registry did not answer ({type(error).__name__})") from None
    if response.status_code == 404:
        raise _NotFound(_error_message(response))
    if response.is_error:
        log.error(
            "registry refused a call",
            extra={"path": path, "status": response.status_code, "error": _error_message(response)},
        )
        raise Unavailable(f"the model registry answered {response.status_code}")
    return response.json()


class RegistryCatalog:
    """Deployments and signatures from the registry, cached and invalidated per model."""

    def __init__(self, http: httpx.AsyncClient, *, ttl: float, clock: Clock = time.monotonic):
        self._http = http
        self._ttl = ttl
        self._clock = clock
        self._deployments: ExpiringCache[str, DeploymentState] = ExpiringCache()
        self._signatures: ExpiringCache[tuple[str, int], InputSignature] = ExpiringCache()
        self._flights: SingleFlight[tuple[str, str, int], Any] = SingleFlight()
        self._generations: dict[str, int] = {}
        self._epoch = 0
        self.registry_calls = 0
        self.invalidations = 0

    def invalidate(self, model: str) -> None:
        """Forget what we know of `model`; a fetch already under way will not store its answer."""
        self._generations[model] = self._generations.get(model, 0) + 1
        self._deployments.discard_where(lambda name: name == model)
        self._signatures.discard_where(lambda key: key[0] == model)
        self.invalidations += 1

    def invalidate_all(self) -> None:
        self._epoch += 1
        self._generations.clear()
        self._deployments.clear()
        self._signatures.clear()
        self.invalidations += 1

    def _generation(self, model: str) -> tuple[int, int]:
        return self._epoch, self._generations.get(model, 0)

    async def deployment(self, model: str) -> DeploymentState:
        cached = self._deployments.get(model, self._clock())
        if cached is not None:
            return cached
        deployment: DeploymentState = await self._flights.run(
            ("deployment", model, 0), lambda: self._fetch_deployment(model)
        )
        return deployment

    async def signature(self, model: str, version: int) -> InputSignature:
        cached = self._signatures.get((model, version), self._clock())
        if cached is not None:
            return cached
        signature: InputSignature = await self._flights.run(
            ("signature", model, version), lambda: self._fetch_signature(model, version)
        )
        return signature

    async def _fetch_deployment(self, model: str) -> DeploymentState:
        generation = self._generation(model)
        self.registry_calls += 1
        try:
            body = await _get_json(self._http, f"/v1/models/{model}/deployment")
        except _NotFound as missing:
            raise UnknownModel(missing.message) from None
        deployment = DeploymentState.model_validate(body)
        if self._generation(model) == generation:
            self._deployments.put(model, deployment, now=self._clock(), ttl=self._ttl)
        return deployment

    async def _fetch_signature(self, model: str, version: int) -> InputSignature:
        generation = self._generation(model)
        self.registry_calls += 1
        try:
            body = await _get_json(self._http, f"/v1/models/{model}/versions/{version}")
        except _NotFound as missing:
            raise UnknownVersion(missing.message) from None
        try:
            signature = InputSignature.model_validate(body["signature"])
        except (KeyError, TypeError, ValidationError) as error:
            log.error("registry sent an unreadable signature", extra={"model": model})
            raise Unavailable(f"version {version} of {model!r} has no readable signature") from (
                error
            )
        if self._generation(model) == generation:
            self._signatures.put((model, version), signature, now=self._clock(), ttl=self._ttl)
        return signature
