"""Each key's webhooks are signed with its own secret, issued and rotated by the registry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.registry.bootstrap import create_app
from services.registry.settings import RegistrySettings
from shared.contracts import PredictionRequest
from tests.integration.delivery.support import DeliveryHarness, prediction, serve_app

pytestmark = [pytest.mark.kafka]
ADMIN_KEY = "admin-key-for-tests-0123456789abcdef"


@dataclass(frozen=True)
class Received:
    body: bytes
    headers: dict[str, str]


@contextmanager
def capturing_receiver() -> Iterator[tuple[str, dict[str, Received]]]:
    """Answers 204 to everything and keeps each webhook as sent, per path."""
    received: dict[str, Received] = {}
    app = FastAPI()

    @app.post("/hooks/{name}")
    async def receive(name: str, request: Request) -> Response:
        received[name] = Received(await request.body(), dict(request.headers))
        return Response(status_code=204)

    with serve_app(app) as url:
        yield url, received


def verifies(secret: str, webhook: Received) -> bool:
    try:
        Webhook(secret).verify(webhook.body, webhook.headers)
    except WebhookVerificationError:
        return False
    return True


@contextmanager
def registry_on(jobs_database_url: str, data_dir: Path) -> Iterator[TestClient]:
    settings = RegistrySettings(
        database_url=f"sqlite:///{data_dir / 'registry.db'}",
        artifact_dir=data_dir / "blobs",
        admin_api_key=ADMIN_KEY,  # type: ignore[arg-type]
        publish_events=False,
        jobs_database_url=jobs_database_url,
    )
    with TestClient(
        create_app(settings), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as client:
        yield client


async def deliver(harness: DeliveryHarness, url: str, owner: str, request_id: str) -> None:
    """A job as the gateway records it for `owner`, answered on `predictions` as a worker
    answers it; returns once its webhook is delivered."""
    callback = f"{url}/hooks/{request_id}"
    request = PredictionRequest(
        request_id=request_id, model="iris", inputs={"x": 1.0}, callback={"url": callback}
    )
    await asyncio.to_thread(harness.service.store.create_pending, request, owner)
    await harness.publish(prediction(request_id, callback))
    await harness.job_in_state(request_id, "delivered")


async def test_each_key_has_its_own_secret_and_a_rotation_overlaps_then_ends(
    delivery_factory: Callable[..., Any], tmp_path: Path, webhook_secret: str
) -> None:
    jobs_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    with capturing_receiver() as (url, received):
        async with delivery_factory(
            jobs_database_url=jobs_url,
            webhook_allowlist=["127.0.0.1"],
            webhook_secret_cache_seconds=0,
        ) as harness:
            with registry_on(jobs_url, tmp_path) as registry:
                key_a = registry.post("/v1/api-keys", json={"name": "app-a", "role": "client"})
                key_b = registry.post("/v1/api-keys", json={"name": "app-b", "role": "client"})
                secret_a = key_a.json()["webhook_secret"]
                secret_b = key_b.json()["webhook_secret"]
                await deliver(harness, url, "app-a", "a-1")
                await deliver(harness, url, "app-b", "b-1")
                await deliver(harness, url, "app-c-without-secret", "c-1")

                rotated = registry.post(
                    "/v1/api-keys/app-a/webhook-secret", params={"overlap_seconds": 5}
                )
                new_secret_a = rotated.json()["webhook_secret"]
                await deliver(harness, url, "app-a", "a-2")

                window_end = datetime.fromisoformat(rotated.json()["previous_valid_until"])
                while datetime.now(UTC) <= window_end:
                    time.sleep(0.1)
                await deliver(harness, url, "app-a", "a-3")
                listed = registry.get("/v1/api-keys").json()

    assert (key_a.status_code, key_b.status_code, rotated.status_code) == (201, 201, 200)
    assert secret_a.startswith("whsec_") and secret_b.startswith("whsec_")
    assert len({secret_a, secret_b, new_secret_a, webhook_secret}) == 4
    # A's secret verifies A's webhooks only, B's only B's; the default signs ownerless ones.
    assert verifies(secret_a, received["a-1"]) and not verifies(secret_a, received["b-1"])
    assert verifies(secret_b, received["b-1"]) and not verifies(secret_b, received["a-1"])
    assert not verifies(webhook_secret, received["a-1"])
    assert verifies(webhook_secret, received["c-1"])
    # During the overlap both secrets verify; the header carries both signatures.
    assert verifies(secret_a, received["a-2"]) and verifies(new_secret_a, received["a-2"])
    assert len(received["a-2"].headers["webhook-signature"].split(" ")) == 2
    # After it only the new one does.
    assert verifies(new_secret_a, received["a-3"]) and not verifies(secret_a, received["a-3"])
    assert len(received["a-3"].headers["webhook-signature"].split(" ")) == 1
    assert all("webhook_secret" not in row and "key" not in row for row in listed)
