"""What the registry says a version should look like, remembered so batches need not ask.

A version's profile, signature and metrics never change once registered, so they are
kept (up to a bound) for good; which version serves production changes, so that answer
is reused for a short while only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import ValidationError

from services.drift.domain.version_reference import VersionReference
from shared.expiring_cache import ExpiringCache
from shared.profile import ReferenceProfile

KEPT_REFERENCES = 1_000


class RegistryUnavailable(RuntimeError):
    """The registry did not answer; the batch is retried until it does."""


class RegistryReferences:
    """Profiles and deployments from the registry's HTTP API (reader role)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        deployment_ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._ttl = deployment_ttl_seconds
        self._clock = clock
        self._production: ExpiringCache[str, tuple[int | None]] = ExpiringCache(max_entries=10_000)
        self._references: OrderedDict[tuple[str, int], VersionReference | None] = OrderedDict()

    async def production_version(self, model: str) -> int | None:
        """The version serving the model's production traffic now; None if none or unknown."""
        now = self._clock()
        cached = self._production.get(model, now)
        if cached is not None:
            return cached[0]
        body = await self._get(f"/v1/models/{model}/deployment")
        version = body.get("production") if body is not None else None
        chosen = version if isinstance(version, int) and version >= 1 else None
        self._production.put(model, (chosen,), now=now, ttl=self._ttl)
        return chosen

    async def reference(self, model: str, version: int) -> VersionReference | None:
        """The version's reference, or None if the registry has no such version."""
        key = (model, version)
        if key in self._references:
            self._references.move_to_end(key)
            return self._references[key]
        found = await self._fetch(model, version)
        self._references[key] = found
        while len(self._references) > KEPT_REFERENCES:
            self._references.popitem(last=False)
        return found

    async def _fetch(self, model: str, version: int) -> VersionReference | None:
        described = await self._get(f"/v1/models/{model}/versions/{version}")
        profile = await self._get(f"/v1/models/{model}/versions/{version}/profile")
        if described is None or profile is None:
            return None
        try:
            signature = described["signature"]
            return VersionReference(
                model=model,
                version=version,
                task=str(signature["task"]),
                profile=ReferenceProfile.model_validate(profile),
                offline_metrics={
                    str(name): float(value)
                    for name, value in dict(described.get("metrics") or {}).items()
                },
            )
        except (KeyError, TypeError, ValueError, ValidationError):
            return None  # a version this service cannot read has no drift to measure

    async def _get(self, path: str) -> dict[str, Any] | None:
        try:
            response = await self._http.get(path)
        except httpx.HTTPError as error:
            raise RegistryUnavailable(f"the registry did not answer: {error!r}") from None
        if response.status_code == 404:
            return None
        if response.is_error:
            raise RegistryUnavailable(f"the registry answered {response.status_code} to {path}")
        body = response.json()
        return body if isinstance(body, dict) else None
