"""Requests naming random versions and models cannot grow a worker's memory or metrics."""

from __future__ import annotations

import random
from dataclasses import replace

from services.inference.domain.metrics import OTHER_LABEL
from services.inference.service_layer.catalogue import DeploymentCatalogue
from shared.contracts import DeploymentState, ErrorCode
from tests.unit.inference.support import FakeSource, make_service, make_store, request, servable


def iris_with_versions(count: int, *, production: int = 1) -> FakeSource:
    source = FakeSource()
    source.add_model(
        "iris",
        {number: servable("iris", number) for number in range(1, count + 1)},
        deployment=DeploymentState(production=production),
    )
    return source


async def test_pinned_versions_are_evicted_least_recently_used_first() -> None:
    source = iris_with_versions(5)
    store = make_store(source, max_versions=2, serving=lambda: {("iris", 1)})
    for version in (1, 2, 3):
        await store.ensure([("iris", version)])
    store.trim()
    assert store.loaded_versions == [("iris", 1), ("iris", 3)]  # production is never evicted
    await store.ensure([("iris", 4)])
    store.get("iris", 3)  # used after 4 was loaded: 4 is now the least recently used
    store.trim()
    assert store.loaded_versions == [("iris", 1), ("iris", 3)]
    await store.ensure([("iris", 5)])
    store.trim()
    assert store.loaded_versions == [("iris", 1), ("iris", 5)]


async def test_a_batch_keeps_every_version_it_loaded_until_trimmed() -> None:
    store = make_store(iris_with_versions(5), max_versions=2)
    await store.ensure([("iris", n) for n in range(1, 6)])
    assert len(store.loaded_versions) == 5
    assert all(getattr(store.get("iris", n), "version", None) == n for n in range(1, 6))
    store.trim()
    assert len(store.loaded_versions) == 2


async def test_loaded_versions_are_bounded_by_artifact_bytes() -> None:
    source = iris_with_versions(4)
    one = servable("iris", 1).artifact_bytes
    assert one > 0
    store = make_store(source, max_bytes=2 * one + 1)
    for version in (1, 2, 3, 4):
        await store.ensure([("iris", version)])
        store.trim()
    assert store.loaded_versions == [("iris", 3), ("iris", 4)]
    assert store.loaded_bytes <= 2 * one + 1


async def test_failed_loads_are_remembered_within_a_bound() -> None:
    store = make_store(iris_with_versions(1), max_failures=10)
    for version in range(100, 200):
        await store.ensure([("iris", version)])
    assert store.remembered_failures == 10
    refusal = store.get("iris", 199)
    assert getattr(refusal, "code", None) == ErrorCode.UNKNOWN_VERSION


async def test_unknown_model_names_are_remembered_within_a_bound() -> None:
    catalogue = DeploymentCatalogue(FakeSource(), unknown_ttl_seconds=60, max_unknown=10)
    await catalogue.ensure(f"random-{n}" for n in range(100))
    assert catalogue.unknown_names_remembered == 10


async def test_metric_labels_name_only_what_the_catalogue_holds() -> None:
    source = iris_with_versions(3)
    source.records["iris"] = replace(
        source.records["iris"],
        deployment=DeploymentState(production=1, canary=2, canary_weight=0.1),
    )
    catalogue = DeploymentCatalogue(source, unknown_ttl_seconds=60, max_unknown=10)
    await catalogue.ensure(["iris"])
    assert catalogue.metric_labels("iris", 1, "ok") == ("iris", "1")
    assert catalogue.metric_labels("iris", 2, "error") == ("iris", "2")  # the canary
    assert catalogue.metric_labels("iris", 3, "ok") == ("iris", "3")  # answered: it exists
    assert catalogue.metric_labels("iris", 987654, "error") == ("iris", OTHER_LABEL)
    assert catalogue.metric_labels("random", 5, "error") == (OTHER_LABEL, OTHER_LABEL)


async def test_random_pins_through_the_service_leave_versions_and_series_bounded() -> None:
    source = iris_with_versions(6)
    service = make_service(source)
    service.store = make_store(
        source, max_versions=3, max_failures=50, serving=service.catalogue.serving_versions
    )
    service.metrics.prediction_labels = service.catalogue.metric_labels
    pick = random.Random(8)
    for batch in range(20):
        requests = [
            request(f"r-{batch}-{n}", version=pick.choice([None, pick.randint(1, 10**6), 2, 3, 4]))
            for n in range(50)
        ]
        requests.append(request(f"m-{batch}", model=f"random-{batch}"))
        answers = (await service.handle(requests)).answers
        assert len(answers) == len(requests)
        assert len(service.store.loaded_versions) <= 3
        assert ("iris", 1) in service.store.loaded_versions  # production is never evicted
    assert service.store.remembered_failures <= 50
    versions = {labels[1] for labels in service.metrics.predictions}
    models = {labels[0] for labels in service.metrics.predictions}
    assert versions <= {"1", "2", "3", "4", "5", "6", OTHER_LABEL}
    assert models == {"iris", OTHER_LABEL}
