"""Real models in memory and a ModelSource we own, for testing the serving core without I/O."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from devtools.sample_models import SampleModel, diabetes_regressor, iris_classifier
from services.inference.domain.metrics import WorkerMetrics
from services.inference.domain.result_cache import ResultCache
from services.inference.domain.routing import RoutingConfig
from services.inference.domain.servable import ServableModel
from services.inference.service_layer.catalogue import DeploymentCatalogue, VersionKey
from services.inference.service_layer.inference import InferenceService
from services.inference.service_layer.model_store import ModelStore
from services.inference.service_layer.ports import (
    ModelRecord,
    RegistryUnavailable,
    VersionNotFound,
)
from shared.contracts import DeploymentState, PredictionRequest
from shared.model_files import load_model, sha256_hex
from shared.signature import InputSignature, infer_signature
from shared.tabular import parse_csv

IRIS_SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
IRIS_VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.6, "petal_width": 2.2}
# Between versicolor and virginica: no model is very sure about it.
IRIS_BORDERLINE = {
    "sepal_length": 6.0,
    "sepal_width": 2.7,
    "petal_length": 5.0,
    "petal_width": 1.6,
}


@functools.cache
def _sample(kind: str, c: float) -> SampleModel:
    return iris_classifier(c=c) if kind == "iris" else diabetes_regressor()


def servable(model: str, version: int, *, kind: str = "iris", c: float = 1.0) -> ServableModel:
    """A real scikit-learn model loaded the way workers load it (skops, hash-checked)."""
    sample = _sample(kind, c)
    data = parse_csv(sample.dataset)
    signature: InputSignature = (
        infer_signature(data, target="target", task="classification")
        if kind == "iris"
        else infer_signature(data, target="target", task="regression")
    )
    estimator = load_model(sample.artifact, expected_sha256=sha256_hex(sample.artifact))
    return ServableModel.wrap(
        model=model,
        version=version,
        signature=signature,
        estimator=estimator,
        artifact_bytes=len(sample.artifact),
    )


class CountingEstimator:
    """Wraps an estimator and counts predict calls, to check one call per group."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.classes_ = getattr(inner, "classes_", None)
        self.calls: list[int] = []

    def predict_proba(self, matrix: Any) -> Any:
        self.calls.append(len(matrix))
        return self.inner.predict_proba(matrix)


class BrokenEstimator:
    """An estimator whose predictions always fail."""

    classes_ = ("setosa", "versicolor", "virginica")

    def predict_proba(self, matrix: Any) -> Any:
        raise ValueError("the estimator exploded")


def with_estimator(model: ServableModel, estimator: Any) -> ServableModel:
    return ServableModel.wrap(
        model=model.model, version=model.version, signature=model.signature, estimator=estimator
    )


@dataclass
class FakeSource:
    """A ModelSource we own: models and versions in dicts, calls counted."""

    records: dict[str, ModelRecord] = field(default_factory=dict)
    versions: dict[tuple[str, int], ServableModel | Exception] = field(default_factory=dict)
    model_fetches: list[str] = field(default_factory=list)
    version_loads: list[tuple[str, int]] = field(default_factory=list)
    unavailable: bool = False

    def add_model(
        self,
        name: str,
        versions: dict[int, ServableModel | Exception],
        *,
        task: str = "classification",
        deployment: DeploymentState | None = None,
        routing: dict[str, Any] | None = None,
    ) -> None:
        self.records[name] = ModelRecord(
            name=name,
            task=task,
            routing=RoutingConfig.from_registry(name, routing or {}),
            deployment=deployment or DeploymentState(production=min(versions)),
        )
        for number, loaded in versions.items():
            self.versions[(name, number)] = loaded

    async def list_models(self) -> list[str]:
        if self.unavailable:
            raise RegistryUnavailable("registry down")
        return sorted(self.records)

    async def fetch_model(self, name: str) -> ModelRecord | None:
        if self.unavailable:
            raise RegistryUnavailable("registry down")
        self.model_fetches.append(name)
        return self.records.get(name)

    async def load_version(self, name: str, version: int) -> ServableModel:
        if self.unavailable:
            raise RegistryUnavailable("registry down")
        self.version_loads.append((name, version))
        found = self.versions.get((name, version))
        if found is None:
            raise VersionNotFound(f"{name} v{version}")
        if isinstance(found, Exception):
            raise found
        return found


def make_store(
    source: FakeSource,
    *,
    max_versions: int = 100,
    max_bytes: int = 10**9,
    max_failures: int = 100,
    serving: Callable[[], Collection[VersionKey]] = frozenset,
    clock: Callable[[], float] = time.monotonic,
) -> ModelStore:
    return ModelStore(
        source,
        failure_ttl_seconds=60.0,
        max_versions=max_versions,
        max_bytes=max_bytes,
        max_failures=max_failures,
        serving=serving,
        clock=clock,
    )


def make_service(
    source: FakeSource, *, cache_size: int = 0, range_tolerance: float = 0.0
) -> InferenceService:
    catalogue = DeploymentCatalogue(source, unknown_ttl_seconds=60.0, max_unknown=100)
    return InferenceService(
        catalogue,
        make_store(source, serving=catalogue.serving_versions),
        cache=ResultCache(cache_size),
        metrics=WorkerMetrics(),
        range_tolerance=range_tolerance,
        shadow_tolerance=0.05,
    )


def request(
    request_id: str, model: str = "iris", inputs: dict[str, Any] | None = None, **fields: Any
) -> PredictionRequest:
    return PredictionRequest(
        request_id=request_id, model=model, inputs=inputs or dict(IRIS_SETOSA), **fields
    )
