"""A real registry with deployed models, and gateways in front of it on the real broker.

One registry per test module (registering models is the slow part); each gateway gets
its own job database and, where a test reads a topic, its own topic prefix.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import skops.io
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from devtools.kafka_broker import KafkaBroker
from devtools.live_registry import LiveRegistry, live_registry
from devtools.sample_models import SampleModel, iris_classifier
from services.gateway.bootstrap import create_app
from services.gateway.entrypoints.dependencies import Container
from services.gateway.settings import GatewaySettings
from shared.kafka.admin import ensure_topics
from shared.topics import FEEDBACK, MODEL_EVENTS, REQUESTS

IRIS_INPUTS = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def iris_on_three_features() -> SampleModel:
    """Iris without petal_width: a later version whose signature differs from the first."""
    data = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length"]
    labels = [str(data.target_names[index]) for index in data.target]
    features = data.data[:, :3]
    model = LogisticRegression(max_iter=500).fit(features, labels)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*names, "target"])
    for row, label in zip(features.tolist(), labels, strict=True):
        writer.writerow([*row, label])
    return SampleModel(
        artifact=skops.io.dumps(model),
        dataset=buffer.getvalue().encode(),
        feature_names=names,
        score=float(model.score(features, labels)),
    )


@dataclass
class Stack:
    """The registry every gateway of the module talks to, and the prefix of its events."""

    registry: LiveRegistry
    bootstrap: str
    topic_prefix: str
    data_dir: Path


@pytest.fixture(scope="module")
def stack(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prefix = f"g{uuid.uuid4().hex[:10]}-"
    asyncio.run(
        ensure_topics(
            kafka_broker.bootstrap, prefix=prefix, specs=[REQUESTS, FEEDBACK, MODEL_EVENTS]
        )
    )
    data_dir = tmp_path_factory.mktemp("gateway-stack")
    with live_registry(
        data_dir=data_dir / "registry", kafka_bootstrap=kafka_broker.bootstrap, topic_prefix=prefix
    ) as registry:
        registry.deploy("iris", [iris_classifier()])
        registry.deploy("iris-twin", [iris_classifier(c=0.5)])
        registry.deploy("flowers", [iris_classifier(), iris_on_three_features()])
        with registry.client("publisher") as publisher:
            publisher.create_model("unserved", "classification")
            publisher.register_version(
                "unserved",
                artifact=iris_classifier().artifact,
                dataset=iris_classifier().dataset,
                metadata={"code_version": "abc1234"},
            )
        yield Stack(
            registry=registry,
            bootstrap=kafka_broker.bootstrap,
            topic_prefix=prefix,
            data_dir=data_dir,
        )


@dataclass
class Gateway:
    """A running gateway app and the keys of the registry behind it."""

    client: TestClient
    settings: GatewaySettings
    keys: dict[str, str]

    @property
    def container(self) -> Container:
        container: Container = self.client.app.state.container  # type: ignore[attr-defined]
        return container

    def call(
        self, method: str, path: str, *, role: str | None = "reader", **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers.setdefault("Authorization", f"Bearer {self.keys[role]}")
        response: httpx.Response = self.client.request(method, path, headers=headers, **kwargs)
        return response

    def predict(self, model: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.call("POST", f"/v1/models/{model}/predict", json=body, **kwargs)


def wait_until_ready(client: TestClient, *, listening: bool = True, timeout: float = 30.0) -> None:
    """Poll /readyz until Kafka is connected (and model events are followed)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        body = response.json()
        if response.status_code == 200 and (not listening or body["model_events"] == "listening"):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the gateway did not become ready: {body}")
        time.sleep(0.05)


StartGateway = Callable[..., AbstractContextManager[Gateway]]


@pytest.fixture
def start_gateway(stack: Stack, tmp_path: Path) -> StartGateway:
    """Start a gateway in front of the module's registry; settings may be overridden."""

    @contextmanager
    def start(*, wait_ready: bool = True, **overrides: Any) -> Iterator[Gateway]:
        settings = GatewaySettings(
            **{
                "registry_url": stack.registry.url,
                "registry_api_key": SecretStr(stack.registry.keys["reader"]),
                "kafka_bootstrap": stack.bootstrap,
                "topic_prefix": stack.topic_prefix,
                "jobs_database_url": f"sqlite:///{tmp_path / f'jobs-{uuid.uuid4().hex[:6]}.db'}",
                "rate_limit_per_second": 1000.0,
                "rate_limit_burst": 1000,
                "signature_cache_seconds": 3600.0,
                **overrides,
            }
        )
        with TestClient(create_app(settings)) as client:
            if wait_ready:
                wait_until_ready(client)
            yield Gateway(client=client, settings=settings, keys=stack.registry.keys)

    return start


@pytest.fixture(scope="module")
def shared_gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway for the tests that read no topic and change no settings."""
    jobs_db = tmp_path_factory.mktemp("shared-gateway") / "jobs.db"
    settings = GatewaySettings(
        registry_url=stack.registry.url,
        registry_api_key=SecretStr(stack.registry.keys["reader"]),
        kafka_bootstrap=stack.bootstrap,
        topic_prefix=stack.topic_prefix,
        jobs_database_url=f"sqlite:///{jobs_db}",
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
    )
    with TestClient(create_app(settings)) as client:
        wait_until_ready(client)
        yield Gateway(client=client, settings=settings, keys=stack.registry.keys)


@pytest.fixture
def own_topics(stack: Stack, topic_prefix: str) -> str:
    """A fresh prefix with `requests`, `feedback` and `model-events`, for exact topic reads."""
    asyncio.run(
        ensure_topics(
            stack.bootstrap, prefix=topic_prefix, specs=[REQUESTS, FEEDBACK, MODEL_EVENTS]
        )
    )
    return topic_prefix
