"""Checking API keys with the registry's whoami: caching, single flight, failures.

The registry is played by an in-process httpx transport (no sockets): what is under test
is the caller's side of the conversation. The real registry answers in
tests/integration/gateway and tests/integration/registry.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from shared.clients.authentication import (
    RegistryAuthenticator,
    RegistryUnavailable,
    UnknownKey,
    key_hash,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Whoami:
    """Answers `/v1/whoami` like the registry, counting calls; `gate` holds answers back."""

    def __init__(self) -> None:
        self.calls = 0
        self.status_override: int | None = None
        self.body_override: Any = None
        self.gate: asyncio.Event | None = None
        self.keys: dict[str, dict[str, Any]] = {
            "good-key": {"name": "ci", "role": "reader", "owner": "data-team"}
        }

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.status_override is not None:
            return httpx.Response(self.status_override, json={"error": {"message": "boom"}})
        if self.body_override is not None:
            return httpx.Response(200, json=self.body_override)
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if key not in self.keys:
            return httpx.Response(401, json={"error": {"message": "unknown key"}})
        return httpx.Response(200, json=self.keys[key])


def _http(registry: Whoami) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url="http://registry", transport=httpx.MockTransport(registry))


@pytest.fixture
def registry() -> Whoami:
    return Whoami()


def test_keys_are_remembered_only_as_hashes() -> None:
    hashed = key_hash("secret-key")

    assert "secret-key" not in hashed
    assert len(hashed) == 64
    assert hashed == key_hash("secret-key") != key_hash("secret-kez")


async def test_a_caller_carries_name_role_owner_and_only_the_hash(registry: Whoami) -> None:
    caller = await RegistryAuthenticator(_http(registry), ttl=60.0, negative_ttl=5.0).authenticate(
        "good-key"
    )

    assert (caller.name, caller.role, caller.owner) == ("ci", "reader", "data-team")
    assert caller.key_hash == key_hash("good-key")


async def test_an_answer_without_owner_leaves_it_unset(registry: Whoami) -> None:
    registry.keys["old"] = {"name": "legacy", "role": "client"}
    auth = RegistryAuthenticator(_http(registry), ttl=60.0, negative_ttl=5.0)

    assert (await auth.authenticate("old")).owner is None


async def test_keys_are_checked_once_per_ttl_and_refusals_for_less(registry: Whoami) -> None:
    clock = Clock()
    auth = RegistryAuthenticator(_http(registry), ttl=60.0, negative_ttl=5.0, clock=clock)

    caller = await auth.authenticate("good-key")
    assert (caller.name, caller.role) == ("ci", "reader")
    assert "good-key" not in caller.key_hash
    for _ in range(2):
        await auth.authenticate("good-key")
        with pytest.raises(UnknownKey):
            await auth.authenticate("bad-key")
    assert auth.registry_calls == 2

    registry.keys["bad-key"] = {"name": "late", "role": "reader"}
    clock.now = 5.0
    assert (await auth.authenticate("bad-key")).name == "late"
    del registry.keys["good-key"]  # revoked: noticed once the positive answer expires
    assert (await auth.authenticate("good-key")).name == "ci"
    clock.now = 60.0
    with pytest.raises(UnknownKey):
        await auth.authenticate("good-key")


async def test_a_burst_for_one_cold_key_makes_one_registry_call(registry: Whoami) -> None:
    auth = RegistryAuthenticator(_http(registry), ttl=60.0, negative_ttl=5.0)
    registry.gate = asyncio.Event()

    waiting = [asyncio.create_task(auth.authenticate("good-key")) for _ in range(20)]
    await asyncio.sleep(0.01)
    registry.gate.set()
    callers = await asyncio.gather(*waiting)

    assert {caller.name for caller in callers} == {"ci"}
    assert registry.calls == 1


async def test_a_failing_registry_is_not_remembered_as_a_refusal(registry: Whoami) -> None:
    auth = RegistryAuthenticator(_http(registry), ttl=60.0, negative_ttl=5.0)
    registry.status_override = 502

    with pytest.raises(RegistryUnavailable, match="answered 502"):
        await auth.authenticate("good-key")
    registry.status_override = None

    assert (await auth.authenticate("good-key")).name == "ci"


async def test_an_unreachable_registry_is_unavailable_not_unknown() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(base_url="http://registry", transport=httpx.MockTransport(refuse))

    with pytest.raises(RegistryUnavailable, match="did not answer"):
        await RegistryAuthenticator(http, ttl=60.0, negative_ttl=5.0).authenticate("k")


async def test_an_unreadable_whoami_is_unavailable_not_a_crash(registry: Whoami) -> None:
    registry.body_override = ["not", "an", "object"]
    auth = RegistryAuthenticator(_http(registry), ttl=60.0, negative_ttl=5.0)

    with pytest.raises(RegistryUnavailable, match="unreadable"):
        await auth.authenticate("good-key")
