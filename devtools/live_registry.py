"""A real registry HTTP server on a free port, for tests of services that call it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from devtools.ports import free_port
from devtools.sample_models import SampleModel
from services.registry.bootstrap import create_app
from services.registry.settings import RegistrySettings
from shared.clients.registry import RegistryClient

ADMIN_KEY = "admin-key-for-tests-0123456789abcdef"


@dataclass
class LiveRegistry:
    """A registry server and keys for each role."""

    url: str
    keys: dict[str, str]

    def client(self, role: str = "publisher") -> RegistryClient:
        return RegistryClient(self.url, self.keys[role])

    def deploy(
        self,
        model: str,
        samples: list[SampleModel],
        *,
        task: str = "classification",
        routing: dict[str, object] | None = None,
    ) -> list[int]:
        """Register `samples` as versions 1..n of `model`, approve all, promote the first;
        then set `routing` (a cascade's small version must exist and be approved first)."""
        with self.client("publisher") as publisher, self.client("approver") as approver:
            publisher.create_model(model, task)
            versions = []
            for sample in samples:
                created = publisher.register_version(
                    model,
                    artifact=sample.artifact,
                    dataset=sample.dataset,
                    metadata={"code_version": "abc1234", "metrics": {"score": sample.score}},
                )
                versions.append(int(created["version"]))
                approver.decide(model, created["version"], "approve", "tests")
            publisher.promote(model, versions[0], "tests")
            if routing:
                approver.update_model(model, routing=routing, reason="tests")
        return versions


@contextmanager
def live_registry(
    *, data_dir: Path, kafka_bootstrap: str, topic_prefix: str, database_url: str | None = None
) -> Iterator[LiveRegistry]:
    """Run the registry with uvicorn in a thread until the block ends."""
    port = free_port()
    settings = RegistrySettings(
        database_url=database_url or f"sqlite:///{data_dir / 'registry.db'}",
        artifact_dir=data_dir / "blobs",
        admin_api_key=ADMIN_KEY,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        outbox_poll_seconds=0.2,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the registry did not become ready within 30 s")
        time.sleep(0.05)
    keys = {"admin": ADMIN_KEY}
    with RegistryClient(url, ADMIN_KEY) as admin:
        for role in ("client", "reader", "reviewer", "publisher", "approver"):
            keys[role] = admin.create_api_key(f"{role}-key", role)
    try:
        yield LiveRegistry(url=url, keys=keys)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
