"""A registry app per test, on SQLite or PostgreSQL, publishing to the real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from devtools.kafka_broker import KafkaBroker
from services.registry.bootstrap import create_app
from services.registry.settings import RegistrySettings
from shared.kafka.admin import ensure_topics
from shared.topics import MODEL_EVENTS

ADMIN_KEY = "admin-key-for-tests-0123456789abcdef"


@dataclass
class Registry:
    """A running registry and a key per role."""

    client: TestClient
    keys: dict[str, str]
    settings: RegistrySettings

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} | kwargs.pop("headers", {})
        return self.client.request(method, path, headers=headers, **kwargs)

    def create_model(self, name: str, task: str = "classification", **extra: Any) -> None:
        response = self.call(
            "publisher", "POST", "/v1/models", json={"name": name, "task": task} | extra
        )
        assert response.status_code == 201, response.text

    def register(
        self,
        model: str,
        artifact: bytes,
        dataset: bytes,
        *,
        role: str = "publisher",
        **metadata: Any,
    ) -> httpx.Response:
        fields = {"code_version": "3f2c1ab", "metrics": {}} | metadata
        return self.call(
            role,
            "POST",
            f"/v1/models/{model}/versions",
            files={
                "artifact": ("model.skops", artifact, "application/octet-stream"),
                "dataset": ("train.csv", dataset, "text/csv"),
            },
            data={"metadata": json.dumps(fields)},
        )


@pytest.fixture
def registry(
    database_url: str, tmp_path: Path, kafka_broker: KafkaBroker, topic_prefix: str
) -> Iterator[Registry]:
    asyncio.run(ensure_topics(kafka_broker.bootstrap, prefix=topic_prefix, specs=[MODEL_EVENTS]))
    settings = RegistrySettings(
        database_url=database_url,
        artifact_dir=tmp_path / "blobs",
        admin_api_key=ADMIN_KEY,  # type: ignore[arg-type]
        kafka_bootstrap=kafka_broker.bootstrap,
        topic_prefix=topic_prefix,
        max_upload_bytes=2 * 1024 * 1024,
        inspect_max_unpacked_bytes=32 * 1024 * 1024,
        outbox_poll_seconds=0.2,
    )
    with TestClient(create_app(settings)) as client:
        keys = {"admin": ADMIN_KEY}
        for role in ("client", "reader", "reviewer", "publisher", "approver"):
            response = client.post(
                "/v1/api-keys",
                json={"name": f"{role}-key", "role": role},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            assert response.status_code == 201, response.text
            keys[role] = response.json()["key"]
        keys["approver2"] = client.post(
            "/v1/api-keys",
            json={"name": "second-approver", "role": "approver"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ).json()["key"]
        yield Registry(client=client, keys=keys, settings=settings)
