"""Caching, single-flight and failure handling of the registry catalog.

The registry is played by an in-process httpx transport (no sockets): what is under test
is the gateway's side of the conversation. The real registry is used in
tests/integration/gateway.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.gateway.adapters.model_events import signature_invalidator
from services.gateway.adapters.registry import RegistryCatalog
from services.gateway.service_layer.errors import (
    Unavailable,
    UnknownModel,
    UnknownVersion,
)
from shared.contracts import ModelEvent
from shared.kafka.codec import encode
from shared.topics import MODEL_EVENTS, REQUESTS

SIGNATURE = {
    "features": [{"name": "age", "kind": "integer", "minimum": 18, "maximum": 90}],
    "target": "churned",
    "task": "classification",
    "classes": ["no", "yes"],
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Registry:
    """Answers like the registry, counting calls; `gate` holds answers back until set."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.production: int | None = 1
        self.status_override: int | None = None
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        if self.gate is not None:
            await self.gate.wait()
        if self.status_override is not None:
            return httpx.Response(self.status_override, json={"error": {"message": "boom"}})
        path = request.url.path
        if path == "/v1/models/churn/deployment":
            return httpx.Response(
                200, json={"model": "churn", "production": self.production, "canary": None}
            )
        if path == "/v1/models/churn/versions/1":
            return httpx.Response(200, json={"version": 1, "signature": SIGNATURE})
        if path.startswith("/v1/models/churn/"):
            return httpx.Response(404, json={"error": {"message": "no version 9"}})
        return httpx.Response(404, json={"error": {"message": "no model named 'x'"}})


def _http(registry: Registry) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url="http://registry", transport=httpx.MockTransport(registry))


@pytest.fixture
def registry() -> Registry:
    return Registry()


async def test_deployments_and_signatures_are_cached_until_the_ttl(registry: Registry) -> None:
    clock = Clock()
    catalog = RegistryCatalog(_http(registry), ttl=60.0, clock=clock)

    for _ in range(3):
        assert (await catalog.deployment("churn")).production == 1
        assert (await catalog.signature("churn", 1)).feature_names == ["age"]
    assert catalog.registry_calls == 2

    clock.now = 61.0
    await catalog.deployment("churn")
    assert catalog.registry_calls == 3


async def test_invalidating_a_model_refetches_only_that_model(registry: Registry) -> None:
    catalog = RegistryCatalog(_http(registry), ttl=3600.0)
    await catalog.deployment("churn")
    registry.production = 2

    catalog.invalidate("other")
    assert (await catalog.deployment("churn")).production == 1
    catalog.invalidate("churn")
    assert (await catalog.deployment("churn")).production == 2


async def test_a_burst_on_a_cold_cache_makes_one_registry_call(registry: Registry) -> None:
    catalog = RegistryCatalog(_http(registry), ttl=60.0)
    registry.gate = asyncio.Event()

    waiting = [asyncio.create_task(catalog.deployment("churn")) for _ in range(20)]
    await asyncio.sleep(0.01)
    registry.gate.set()
    answers = await asyncio.gather(*waiting)

    assert {answer.production for answer in answers} == {1}
    assert registry.calls == ["/v1/models/churn/deployment"]


async def test_an_answer_fetched_across_an_invalidation_is_not_kept(registry: Registry) -> None:
    catalog = RegistryCatalog(_http(registry), ttl=3600.0)
    registry.gate = asyncio.Event()
    in_flight = asyncio.create_task(catalog.deployment("churn"))
    await asyncio.sleep(0.01)

    catalog.invalidate("churn")  # the deployment changed while the old answer was on its way
    registry.gate.set()
    await in_flight
    registry.production = 2

    assert (await catalog.deployment("churn")).production == 2


async def test_registry_refusals_become_the_gateway_errors(registry: Registry) -> None:
    catalog = RegistryCatalog(_http(registry), ttl=60.0)

    with pytest.raises(UnknownModel, match="no model named"):
        await catalog.deployment("x")
    with pytest.raises(UnknownVersion, match="no version 9"):
        await catalog.signature("churn", 9)
    registry.status_override = 500
    with pytest.raises(Unavailable, match="answered 500"):
        await catalog.deployment("churn")


async def test_an_unreachable_registry_is_unavailable_not_unknown() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(base_url="http://registry", transport=httpx.MockTransport(refuse))

    with pytest.raises(Unavailable, match="did not answer"):
        await RegistryCatalog(http, ttl=60.0).deployment("churn")


async def test_model_events_invalidate_their_model_and_unreadable_ones_everything() -> None:
    changed: list[str] = []
    gaps: list[bool] = []
    listener = signature_invalidator(
        bootstrap="unused:9092",
        topic="model-events",
        client_id="tests",
        invalidate=changed.append,
        invalidate_all=lambda: gaps.append(True),
    )
    event = ModelEvent(event_type="deployment.changed", model="churn", actor="ci")
    record = encode(MODEL_EVENTS, event, key="churn", source="/modelbus/registry")

    await listener._handle(record.value, record.headers)
    await listener._handle(b"{not json", record.headers)
    await listener._handle(record.value, [("ce_type", REQUESTS.event_type.encode())])

    assert changed == ["churn"]
    assert gaps == [True, True]
    assert listener.events_seen == 3
