"""Who an API key belongs to, asked of the registry's `/v1/whoami` by any service that
takes keys over HTTP; answers are remembered by key hash so the registry is not asked per call."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from shared.expiring_cache import ExpiringCache
from shared.roles import Role, role_includes
from shared.single_flight import SingleFlight

log = logging.getLogger(__name__)
Clock = Callable[[], float]


class AuthenticationFailed(Exception):
    """Base: the key could not be turned into a caller."""


class UnknownKey(AuthenticationFailed):
    """The registry does not know the key, or it was revoked or has expired."""


class RegistryUnavailable(AuthenticationFailed):
    """The registry did not answer (or failed), so the key could not be checked; retry later."""


@dataclass(frozen=True)
class Caller:
    """An authenticated API key: its name, its registry role and the owner accountable for it."""

    name: str
    role: str
    key_hash: str
    owner: str | None = None

    def has_role(self, needed: Role) -> bool:
        """Whether the key's role includes `needed` (a role unknown here includes nothing)."""
        return role_includes(self.role, needed)


def key_hash(api_key: str) -> str:
    """What a service remembers of a key: its SHA-256, never the key itself."""
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class _Verdict:
    caller: Caller | None


class RegistryAuthenticator:
    """Checks API keys with the registry's `/v1/whoami`; refusals are remembered for less
    time than acceptances, and registry failures not at all."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        ttl: float,
        negative_ttl: float,
        clock: Clock = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._http = http
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._verdicts: ExpiringCache[str, _Verdict] = ExpiringCache(max_entries=max_keys)
        self._flights: SingleFlight[str, _Verdict] = SingleFlight()
        self.registry_calls = 0

    async def authenticate(self, api_key: str) -> Caller:
        """The caller the key belongs to; raises UnknownKey or RegistryUnavailable."""
        hashed = key_hash(api_key)
        verdict = self._verdicts.get(hashed, self._clock())
        if verdict is None:
            verdict = await self._flights.run(hashed, lambda: self._ask(api_key, hashed))
        if verdict.caller is None:
            raise UnknownKey("unknown or revoked API key")
        return verdict.caller

    async def _ask(self, api_key: str, hashed: str) -> _Verdict:
        self.registry_calls += 1
        headers = {"Authorization": f"Bearer {api_key}"}
        try:
            response = await self._http.get("/v1/whoami", headers=headers)
        except httpx.HTTPError as error:
            log.warning("registry whoami failed", extra={"error": repr(error)})
            raise RegistryUnavailable(
                "the model registry did not answer; cannot check the API key"
            ) from None
        if response.status_code in (401, 403):
            verdict = _Verdict(caller=None)
            self._verdicts.put(hashed, verdict, now=self._clock(), ttl=self._negative_ttl)
            return verdict
        if response.is_error:
            log.error("registry whoami refused", extra={"status": response.status_code})
            raise RegistryUnavailable(f"the model registry answered {response.status_code}")
        verdict = _Verdict(_caller_from(response, hashed))
        self._verdicts.put(hashed, verdict, now=self._clock(), ttl=self._ttl)
        return verdict


def _caller_from(response: httpx.Response, hashed: str) -> Caller:
    try:
        body = response.json()
        owner = body.get("owner")
        return Caller(
            name=str(body["name"]),
            role=str(body["role"]),
            key_hash=hashed,
            owner=str(owner) if owner is not None else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        log.error("registry whoami answered an unreadable body")
        raise RegistryUnavailable("the model registry answered an unreadable whoami") from None
