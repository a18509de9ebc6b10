"""The serving core on real scikit-learn models, with a model source we own."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.inference.domain.answers import Classified, Regressed
from services.inference.domain.servable import ServableModel
from services.inference.service_layer.ports import ModelLoadFailed, RegistryUnavailable
from shared.contracts import DeploymentState, ErrorCode
from shared.contracts.base import utc_now
from tests.unit.inference.support import (
    IRIS_BORDERLINE,
    IRIS_SETOSA,
    IRIS_VIRGINICA,
    BrokenEstimator,
    CountingEstimator,
    FakeSource,
    make_service,
    request,
    servable,
    with_estimator,
)


def iris_source(**deployment: int | float | None) -> FakeSource:
    source = FakeSource()
    source.add_model(
        "iris",
        {1: servable("iris", 1), 2: servable("iris", 2, c=0.05)},
        deployment=DeploymentState(**deployment) if deployment else DeploymentState(production=1),
    )
    return source


async def test_good_and_bad_requests_in_one_batch_each_get_the_right_answer() -> None:
    source = iris_source(production=1)
    source.add_model("empty", {1: servable("empty", 1)}, deployment=DeploymentState())
    service = make_service(source)
    requests = [
        request(
            "ok-1", inputs=IRIS_SETOSA, routing_key="cust-1", callback={"url": "https://x.test/cb"}
        ),
        request("unknown-model", model="churn"),
        request("unknown-version", version=9),
        request("no-deployment", model="empty"),
        request("missing", inputs={"sepal_length": 5.0}),
        request("wrong-type", inputs=IRIS_SETOSA | {"petal_width": "wide"}),
        request("out-of-range", inputs=IRIS_SETOSA | {"petal_length": 80.0}),
        request("unknown-feature", inputs=IRIS_SETOSA | {"colour": "blue"}),
        request("ok-2", inputs=IRIS_VIRGINICA),
    ]

    result = await service.handle(requests)

    by_id = {answer.request_id: answer for answer in result.answers}
    assert [answer.request_id for answer in result.answers] == [r.request_id for r in requests]
    assert by_id["ok-1"].status == "ok"
    assert isinstance(by_id["ok-1"].output, Classified)
    assert by_id["ok-1"].output.label == "setosa"
    assert set(by_id["ok-1"].output.probabilities) == {"setosa", "versicolor", "virginica"}
    assert sum(by_id["ok-1"].output.probabilities.values()) == pytest.approx(1.0)
    assert by_id["ok-1"].routing_key == "cust-1"
    assert by_id["ok-1"].callback_url == "https://x.test/cb"
    assert (by_id["ok-1"].version, by_id["ok-1"].variant) == (1, "production")
    assert isinstance(by_id["ok-2"].output, Classified)
    assert by_id["ok-2"].output.label == "virginica"
    expected_codes = {
        "unknown-model": ErrorCode.UNKNOWN_MODEL,
        "unknown-version": ErrorCode.UNKNOWN_VERSION,
        "no-deployment": ErrorCode.NO_DEPLOYMENT,
        "missing": ErrorCode.INVALID_INPUT,
        "wrong-type": ErrorCode.INVALID_INPUT,
        "out-of-range": ErrorCode.INVALID_INPUT,
        "unknown-feature": ErrorCode.INVALID_INPUT,
    }
    for request_id, code in expected_codes.items():
        answer = by_id[request_id]
        assert answer.status == "error", request_id
        assert answer.error is not None and answer.error.code == code, request_id
    assert "missing_feature" in by_id["missing"].error.message  # type: ignore[union-attr]
    assert "'petal_width'" in by_id["missing"].error.message  # type: ignore[union-attr]
    assert "wrong_type" in by_id["wrong-type"].error.message  # type: ignore[union-attr]
    assert "out_of_range" in by_id["out-of-range"].error.message  # type: ignore[union-attr]
    assert "unknown_feature" in by_id["unknown-feature"].error.message  # type: ignore[union-attr]
    assert by_id["unknown-version"].version == 9
    assert result.shadows == []
    assert service.metrics.errors[ErrorCode.INVALID_INPUT] == 4


async def test_one_predict_call_per_version_per_batch() -> None:
    source = iris_source(production=1)
    counting = CountingEstimator(servable("iris", 1).estimator)
    source.versions[("iris", 1)] = with_estimator(servable("iris", 1), counting)
    counting_v2 = CountingEstimator(servable("iris", 2, c=0.05).estimator)
    source.versions[("iris", 2)] = with_estimator(servable("iris", 2, c=0.05), counting_v2)
    service = make_service(source)
    requests = [
        request(f"r{i}", inputs=IRIS_SETOSA | {"sepal_length": 4.5 + i / 100}) for i in range(40)
    ]
    requests += [request(f"p{i}", version=2) for i in range(7)]

    result = await service.handle(requests)

    assert all(answer.status == "ok" for answer in result.answers)
    assert counting.calls == [40]
    assert counting_v2.calls == [7]
    assert {a.version for a in result.answers if a.request_id.startswith("p")} == {2}


async def test_canary_requests_answer_as_canary_with_their_version() -> None:
    service = make_service(iris_source(production=1, canary=2, canary_weight=0.5))
    requests = [request(f"r{i}", routing_key=f"key-{i}") for i in range(200)]
    result = await service.handle(requests)
    variants = {(answer.version, answer.variant) for answer in result.answers}
    assert variants == {(1, "production"), (2, "canary")}
    again = await service.handle(requests)
    assert [a.version for a in again.answers] == [a.version for a in result.answers]


async def test_shadow_predicts_every_routed_request_and_tallies_agreement() -> None:
    service = make_service(iris_source(production=1, shadow=2))
    requests = [
        request("a", inputs=IRIS_SETOSA),
        request("b", inputs=IRIS_VIRGINICA),
        request("bad", inputs={"sepal_length": 1.0}),
    ]
    result = await service.handle(requests)
    assert [a.variant for a in result.answers] == ["production"] * 3
    shadows = {requests[index].request_id: shadow for index, shadow in result.shadows}
    assert set(shadows) == {"a", "b"}  # an invalid request gets no shadow answer
    assert all(
        s.variant == "shadow" and s.version == 2 and s.status == "ok" for s in shadows.values()
    )
    assert service.metrics.shadow.compared["iris"] == 2
    assert service.metrics.predictions[("iris", "2", "shadow", "ok")] == 2


async def test_cascade_small_model_answers_when_sure_big_model_otherwise() -> None:
    source = FakeSource()
    small = CountingEstimator(servable("iris", 1, c=0.05).estimator)
    big = CountingEstimator(servable("iris", 2, c=100.0).estimator)
    source.add_model(
        "iris",
        {
            1: with_estimator(servable("iris", 1, c=0.05), small),
            2: with_estimator(servable("iris", 2, c=100.0), big),
        },
        deployment=DeploymentState(production=2),
        routing={"cascade": {"small_version": 1, "min_confidence": 0.6}},
    )
    service = make_service(source)
    sure = request("sure", inputs=IRIS_SETOSA)
    unsure = request("unsure", inputs=IRIS_BORDERLINE)
    pinned = request("pinned", inputs=IRIS_BORDERLINE, version=2)

    result = await service.handle([sure, unsure, pinned])

    by_id = {answer.request_id: answer for answer in result.answers}
    assert by_id["sure"].version == 1
    assert by_id["unsure"].version == 2
    assert by_id["pinned"].version == 2
    assert all(answer.variant == "production" for answer in result.answers)
    assert small.calls == [2]  # one call for both routed requests
    assert big.calls == [2]  # the unsure fallback and the pinned request, together
    assert service.metrics.cascade_answers[("iris", "small")] == 1
    assert service.metrics.cascade_answers[("iris", "big")] == 1


async def test_result_cache_answers_repeated_inputs_without_predicting() -> None:
    source = iris_source(production=1)
    counting = CountingEstimator(servable("iris", 1).estimator)
    source.versions[("iris", 1)] = with_estimator(servable("iris", 1), counting)
    service = make_service(source, cache_size=100)

    first = await service.handle([request("a"), request("b", inputs=IRIS_VIRGINICA)])
    second = await service.handle(
        [request("c"), request("d", inputs=dict(reversed(IRIS_SETOSA.items())))]
    )

    assert counting.calls == [2]
    assert second.answers[0].output == first.answers[0].output
    assert second.answers[1].output == first.answers[0].output
    assert (service.cache.hits, service.cache.misses) == (2, 2)
    assert service.cache.hit_rate == 0.5


async def test_partly_cached_batch_predicts_only_the_misses_and_keeps_answers_in_order() -> None:
    source = iris_source(production=1)
    counting = CountingEstimator(servable("iris", 1).estimator)
    source.versions[("iris", 1)] = with_estimator(servable("iris", 1), counting)
    service = make_service(source, cache_size=100)
    await service.handle([request("warm-setosa"), request("warm-virginica", inputs=IRIS_VIRGINICA)])

    mixed = [
        request("hit-virginica", inputs=IRIS_VIRGINICA),
        request("miss-borderline", inputs=IRIS_BORDERLINE),
        request("hit-setosa"),
        request(
            "miss-as-ints",
            inputs={"sepal_length": 6, "sepal_width": 3, "petal_length": 4, "petal_width": 1},
        ),
    ]
    result = await service.handle(mixed)

    assert counting.calls == [2, 2]  # the warm-up, then only the two misses
    uncached = await make_service(iris_source(production=1)).handle(mixed)
    assert [a.output for a in result.answers] == [a.output for a in uncached.answers]
    assert [a.request_id for a in result.answers] == [r.request_id for r in mixed]
    labels = [a.output.label for a in result.answers if isinstance(a.output, Classified)]
    assert len(labels) == 4 and labels[0] == "virginica" and labels[2] == "setosa"
    assert (service.cache.hits, service.cache.misses) == (2, 4)


async def test_model_failure_only_fails_its_group() -> None:
    source = iris_source(production=1)
    source.versions[("iris", 2)] = with_estimator(servable("iris", 2), BrokenEstimator())
    service = make_service(source)
    result = await service.handle([request("good"), request("broken", version=2)])
    good, broken = result.answers
    assert good.status == "ok"
    assert broken.status == "error" and broken.error is not None
    assert broken.error.code == ErrorCode.MODEL_FAILURE
    assert "exploded" in broken.error.message


async def test_unloadable_version_is_a_model_failure_and_is_not_refetched_each_batch() -> None:
    source = iris_source(production=1)
    source.versions[("iris", 2)] = ModelLoadFailed("SHA-256 mismatch")
    service = make_service(source)
    for _ in range(3):
        result = await service.handle([request("x", version=2)])
        assert result.answers[0].error is not None
        assert result.answers[0].error.code == ErrorCode.MODEL_FAILURE
        assert "SHA-256" in result.answers[0].error.message
    assert source.version_loads.count(("iris", 2)) == 1


async def test_registry_outage_is_raised_not_answered() -> None:
    source = iris_source(production=1)
    source.unavailable = True
    service = make_service(source)
    with pytest.raises(RegistryUnavailable):
        await service.handle([request("x")])


async def test_regressor_answers_values_and_latency_is_measured_from_creation() -> None:
    source = FakeSource()
    source.add_model("diabetes", {1: servable("diabetes", 1, kind="diabetes")}, task="regression")
    service = make_service(source, range_tolerance=0.5)
    inputs = {
        name: 0.01 for name in servable("diabetes", 1, kind="diabetes").signature.feature_names
    }
    created = utc_now() - timedelta(milliseconds=250)
    result = await service.handle(
        [request("d", model="diabetes", inputs=inputs, created_at=created)]
    )
    answer = result.answers[0]
    assert answer.status == "ok"
    assert isinstance(answer.output, Regressed)
    assert 250.0 <= answer.latency_ms < 10_000.0


async def test_future_creation_time_gives_zero_latency() -> None:
    service = make_service(iris_source(production=1))
    result = await service.handle([request("f", created_at=utc_now() + timedelta(hours=1))])
    assert result.answers[0].latency_ms == 0.0


async def test_a_deployed_version_missing_from_the_registry_is_a_model_failure() -> None:
    source = iris_source(production=1, canary=3, canary_weight=0.99)
    service = make_service(source)
    result = await service.handle(
        [request("routed", routing_key="k"), request("pinned", version=3)]
    )
    routed, pinned = result.answers
    assert routed.error is not None and routed.error.code == ErrorCode.MODEL_FAILURE
    assert routed.variant == "canary"
    assert pinned.error is not None and pinned.error.code == ErrorCode.UNKNOWN_VERSION


async def test_a_pinned_rejected_version_gets_an_error_not_an_answer() -> None:
    source = FakeSource()
    rejected = servable("iris", 3)
    source.add_model(
        "iris",
        {
            1: servable("iris", 1),
            2: servable("iris", 2, c=0.05),
            3: ServableModel.wrap(
                model="iris",
                version=3,
                signature=rejected.signature,
                estimator=rejected.estimator,
                rejected=True,
            ),
        },
    )
    service = make_service(source)
    batch = [request("rejected-at-load", version=3), request("approved", version=2)]

    first = {answer.request_id: answer for answer in (await service.handle(batch)).answers}
    assert first["rejected-at-load"].output is None
    assert first["rejected-at-load"].error is not None
    assert first["rejected-at-load"].error.code == ErrorCode.VERSION_REJECTED
    assert first["approved"].output is not None and first["approved"].version == 2

    service.store.record_verdict("iris", 2, rejected=True)
    service.store.record_verdict("iris", 3, rejected=False)
    second = {answer.request_id: answer for answer in (await service.handle(batch)).answers}
    assert second["approved"].error is not None
    assert second["approved"].error.code == ErrorCode.VERSION_REJECTED
    assert second["rejected-at-load"].output is not None


async def test_a_rejected_small_version_leaves_the_cascade_to_the_big_one() -> None:
    source = FakeSource()
    source.add_model(
        "iris",
        {1: servable("iris", 1, c=0.05), 2: servable("iris", 2, c=100.0)},
        deployment=DeploymentState(production=2),
        routing={"cascade": {"small_version": 1, "min_confidence": 0.6}},
    )
    service = make_service(source)
    service.store.record_verdict("iris", 1, rejected=True)
    result = await service.handle([request("sure", inputs=IRIS_SETOSA)])
    assert result.answers[0].version == 2 and result.answers[0].output is not None
