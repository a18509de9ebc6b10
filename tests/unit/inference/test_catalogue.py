"""The deployment catalogue follows registry events; unknown names are remembered briefly."""

from __future__ import annotations

from dataclasses import replace

from services.inference.service_layer.catalogue import DeploymentCatalogue
from shared.contracts import DeploymentState, ErrorCode, ModelEvent
from tests.unit.inference.support import FakeSource, make_store, servable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def source_with_iris() -> FakeSource:
    source = FakeSource()
    source.add_model("iris", {1: servable("iris", 1), 2: servable("iris", 2)})
    return source


async def test_deployment_changed_event_takes_effect_immediately() -> None:
    catalogue = DeploymentCatalogue(source_with_iris(), unknown_ttl_seconds=5, max_unknown=100)
    await catalogue.refresh_all()
    preload = await catalogue.apply(
        ModelEvent(
            event_type="deployment.changed",
            model="iris",
            deployment=DeploymentState(production=1, canary=2, canary_weight=0.2),
            actor="tests",
        )
    )
    state = catalogue.get("iris")
    assert state is not None
    assert state.deployment == DeploymentState(production=1, canary=2, canary_weight=0.2)
    assert preload == {("iris", 1), ("iris", 2)}


async def test_events_for_models_not_served_here_are_left_to_the_first_request() -> None:
    source = source_with_iris()
    catalogue = DeploymentCatalogue(source, unknown_ttl_seconds=5, max_unknown=100)
    event = ModelEvent(
        event_type="deployment.changed",
        model="iris",
        deployment=DeploymentState(production=2),
        actor="tests",
    )
    assert await catalogue.apply(event) == set()
    assert catalogue.get("iris") is None
    await catalogue.ensure(["iris"])
    assert catalogue.get("iris") is not None


async def test_unknown_names_are_remembered_until_the_ttl_or_registration() -> None:
    source = FakeSource()
    clock = Clock()
    catalogue = DeploymentCatalogue(source, unknown_ttl_seconds=5, max_unknown=100, clock=clock)
    await catalogue.ensure(["churn"])
    await catalogue.ensure(["churn"])
    assert source.model_fetches == ["churn"]
    clock.now += 6
    await catalogue.ensure(["churn"])
    assert source.model_fetches == ["churn", "churn"]
    source.add_model("churn", {1: servable("churn", 1)})
    await catalogue.apply(ModelEvent(event_type="model.registered", model="churn", actor="t"))
    await catalogue.ensure(["churn"])
    assert catalogue.get("churn") is not None


async def test_model_updated_refetches_routing_options() -> None:
    source = source_with_iris()
    catalogue = DeploymentCatalogue(source, unknown_ttl_seconds=5, max_unknown=100)
    await catalogue.refresh_all()
    assert catalogue.get("iris").routing.cascade is None  # type: ignore[union-attr]
    source.add_model(
        "iris",
        {1: servable("iris", 1), 2: servable("iris", 2)},
        deployment=DeploymentState(production=2),
        routing={"cascade": {"small_version": 1, "min_confidence": 0.9}},
    )
    preload = await catalogue.apply(ModelEvent(event_type="model.updated", model="iris", actor="t"))
    state = catalogue.get("iris")
    assert state is not None and state.routing.cascade is not None
    assert state.routing.cascade.small_version == 1
    assert preload == {("iris", 1), ("iris", 2)}


async def test_refresh_all_forgets_deleted_models() -> None:
    source = source_with_iris()
    catalogue = DeploymentCatalogue(source, unknown_ttl_seconds=5, max_unknown=100)
    await catalogue.refresh_all()
    del source.records["iris"]
    await catalogue.refresh_all()
    assert catalogue.get("iris") is None


async def test_store_remembers_unknown_versions_until_registered() -> None:
    source = source_with_iris()
    store = make_store(source)
    await store.ensure([("iris", 3)])
    refusal = store.get("iris", 3)
    assert getattr(refusal, "code", None) == ErrorCode.UNKNOWN_VERSION
    await store.ensure([("iris", 3)])
    assert source.version_loads.count(("iris", 3)) == 1
    source.versions[("iris", 3)] = servable("iris", 3)
    store.forget_failure("iris", 3)
    await store.ensure([("iris", 3)])
    assert getattr(store.get("iris", 3), "version", None) == 3


async def test_concurrent_loads_of_one_version_share_one_registry_call() -> None:
    import asyncio

    source = source_with_iris()
    store = make_store(source)
    await asyncio.gather(
        store.ensure([("iris", 1)]), store.ensure([("iris", 1)]), store.preload([("iris", 1)])
    )
    assert source.version_loads == [("iris", 1)]


def _changed(revision: int | None, production: int) -> ModelEvent:
    return ModelEvent(
        event_type="deployment.changed",
        model="iris",
        deployment=DeploymentState(production=production, revision=revision),
        actor="tests",
    )


async def test_deployment_events_no_newer_than_the_state_held_are_ignored() -> None:
    source = source_with_iris()
    source.records["iris"] = replace(
        source.records["iris"], deployment=DeploymentState(production=1, revision=4)
    )
    catalogue = DeploymentCatalogue(source, unknown_ttl_seconds=5, max_unknown=100)
    await catalogue.refresh_all()

    assert await catalogue.apply(_changed(3, production=2)) == set()
    assert await catalogue.apply(_changed(4, production=2)) == set()
    assert catalogue.get("iris").deployment.production == 1  # type: ignore[union-attr]
    assert await catalogue.apply(_changed(5, production=2)) == {("iris", 2)}
    assert catalogue.get("iris").deployment.revision == 5  # type: ignore[union-attr]
    # An event without a revision (a registry from before revisions) still applies.
    await catalogue.apply(_changed(None, production=1))
    assert catalogue.get("iris").deployment.production == 1  # type: ignore[union-attr]


async def test_a_refetch_overtaken_by_a_newer_event_keeps_the_event_state() -> None:
    source = source_with_iris()
    source.records["iris"] = replace(
        source.records["iris"], deployment=DeploymentState(production=1, revision=1)
    )
    catalogue = DeploymentCatalogue(source, unknown_ttl_seconds=5, max_unknown=100)
    await catalogue.refresh_all()
    await catalogue.apply(_changed(2, production=2))
    # The registry answers with revision 1, as a read that started before the change would.
    await catalogue.apply(ModelEvent(event_type="model.updated", model="iris", actor="t"))
    state = catalogue.get("iris")
    assert state is not None and state.deployment == DeploymentState(production=2, revision=2)

    # A full resync believes the registry; a re-registered name starts its revisions over.
    await catalogue.refresh_all()
    assert catalogue.get("iris").deployment.revision == 1  # type: ignore[union-attr]
    await catalogue.apply(_changed(9, production=2))
    await catalogue.apply(ModelEvent(event_type="model.registered", model="iris", actor="t"))
    assert catalogue.get("iris") is None
