"""Routing: sticky canary split, pinned versions, cascade options."""

from __future__ import annotations

import math

import pytest

from services.inference.domain.answers import Classified, Regressed
from services.inference.domain.routing import (
    CascadeConfig,
    Route,
    RoutingConfig,
    choose_route,
    confidence,
    routing_point,
    small_answer_is_final,
)
from shared.contracts import DeploymentState

KEYS = [f"customer-{index}" for index in range(20_000)]


def four_sigma_bounds(count: int, share: float) -> tuple[float, float]:
    """Binomial 4-sigma interval for the observed share of `count` draws."""
    sigma = math.sqrt(share * (1 - share) / count)
    return share - 4 * sigma, share + 4 * sigma


def canary_share(model: str, deployment: DeploymentState, keys: list[str]) -> float:
    routes = [
        choose_route(model=model, pinned=None, routing_key=key, deployment=deployment)
        for key in keys
    ]
    return sum(route is not None and route.variant == "canary" for route in routes) / len(keys)


def test_routing_point_is_deterministic_and_in_unit_interval() -> None:
    points = [routing_point("iris", key) for key in KEYS[:1000]]
    assert points == [routing_point("iris", key) for key in KEYS[:1000]]
    assert all(0.0 <= point < 1.0 for point in points)
    assert len(set(points)) == 1000


@pytest.mark.parametrize("weight", [0.05, 0.3, 0.5, 0.9])
def test_canary_share_matches_weight_within_four_sigma(weight: float) -> None:
    deployment = DeploymentState(production=1, canary=2, canary_weight=weight)
    low, high = four_sigma_bounds(len(KEYS), weight)
    assert low <= canary_share("iris", deployment, KEYS) <= high


def test_assignment_is_sticky_per_key() -> None:
    deployment = DeploymentState(production=1, canary=2, canary_weight=0.3)
    first = {
        key: choose_route(model="iris", pinned=None, routing_key=key, deployment=deployment)
        for key in KEYS[:2000]
    }
    for _ in range(3):
        for key, route in first.items():
            again = choose_route(model="iris", pinned=None, routing_key=key, deployment=deployment)
            assert again == route


def test_raising_the_weight_only_moves_keys_to_the_canary() -> None:
    def on_canary(weight: float) -> set[str]:
        deployment = DeploymentState(production=1, canary=2, canary_weight=weight)
        return {
            key
            for key in KEYS[:5000]
            if choose_route(model="m", pinned=None, routing_key=key, deployment=deployment)
            == Route(2, "canary")
        }

    assert on_canary(0.1) <= on_canary(0.3) <= on_canary(0.6)
    assert len(on_canary(0.1)) < len(on_canary(0.6))


def test_models_split_independently() -> None:
    """The same key is not always on the canary of every model (hash includes the model)."""
    deployment = DeploymentState(production=1, canary=2, canary_weight=0.5)

    def canary_keys(model: str) -> set[str]:
        return {
            key
            for key in KEYS
            if choose_route(model=model, pinned=None, routing_key=key, deployment=deployment)
            == Route(2, "canary")
        }

    both = len(canary_keys("iris") & canary_keys("churn")) / len(KEYS)
    low, high = four_sigma_bounds(len(KEYS), 0.25)
    assert low <= both <= high


def test_without_canary_everything_goes_to_production() -> None:
    deployment = DeploymentState(production=3)
    assert canary_share("iris", deployment, KEYS[:2000]) == 0.0
    route = choose_route(model="iris", pinned=None, routing_key="k", deployment=deployment)
    assert route == Route(3, "production")


def test_pinned_version_wins_and_answers_as_canary_only_if_it_is_the_canary() -> None:
    deployment = DeploymentState(production=1, canary=2, canary_weight=0.5)
    assert choose_route(model="m", pinned=2, routing_key="k", deployment=deployment) == Route(
        2, "canary", pinned=True
    )
    assert choose_route(model="m", pinned=7, routing_key="k", deployment=deployment) == Route(
        7, "production", pinned=True
    )
    nothing = DeploymentState()
    assert choose_route(model="m", pinned=4, routing_key="k", deployment=nothing) == Route(
        4, "production", pinned=True
    )


def test_no_production_means_no_route() -> None:
    assert (
        choose_route(model="m", pinned=None, routing_key="k", deployment=DeploymentState()) is None
    )


def test_routing_config_parses_cascade_and_ignores_malformed_options() -> None:
    config = RoutingConfig.from_registry(
        "m", {"cascade": {"small_version": 3, "min_confidence": 0.8}, "other": 1}
    )
    assert config.cascade == CascadeConfig(small_version=3, min_confidence=0.8)
    assert RoutingConfig.from_registry("m", {"cascade": {"small_version": 0}}).cascade is None
    assert RoutingConfig.from_registry("m", {"cascade": "yes"}).cascade is None
    assert RoutingConfig.from_registry("m", None).cascade is None


def test_cascade_applies_only_to_routed_requests_served_by_another_version() -> None:
    config = RoutingConfig(cascade=CascadeConfig(small_version=3, min_confidence=0.8))
    assert config.cascade_for(Route(5, "production")) == config.cascade
    assert config.cascade_for(Route(5, "canary")) == config.cascade
    assert config.cascade_for(Route(5, "production", pinned=True)) is None
    assert config.cascade_for(Route(3, "production")) is None
    assert RoutingConfig().cascade_for(Route(5, "production")) is None


def test_cascade_decision_uses_the_largest_probability() -> None:
    cascade = CascadeConfig(small_version=1, min_confidence=0.8)
    sure = Classified(label="a", probabilities={"a": 0.85, "b": 0.15})
    exactly = Classified(label="a", probabilities={"a": 0.8, "b": 0.2})
    unsure = Classified(label="b", probabilities={"a": 0.45, "b": 0.55})
    assert small_answer_is_final(sure, cascade)
    assert small_answer_is_final(exactly, cascade)
    assert not small_answer_is_final(unsure, cascade)
    assert confidence(Classified(label="a", probabilities={})) == 0.0
    assert confidence(Regressed(value=3.0)) == 0.0
