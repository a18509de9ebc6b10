"""Shadow agreement and the Prometheus rendering of worker metrics."""

from __future__ import annotations

from services.inference.domain.answers import Classified, Regressed
from services.inference.domain.metrics import WorkerMetrics, render_prometheus
from services.inference.domain.shadow import AgreementTally, outputs_agree
from shared.metrics import Histogram
from tests.support.prometheus import kinds, samples


def test_classifiers_agree_on_the_label_regressors_within_tolerance() -> None:
    a = Classified(label="x", probabilities={"x": 0.6, "y": 0.4})
    b = Classified(label="x", probabilities={"x": 0.9, "y": 0.1})
    c = Classified(label="y", probabilities={"x": 0.4, "y": 0.6})
    assert outputs_agree(a, b, tolerance=0.0)
    assert not outputs_agree(a, c, tolerance=0.0)
    assert outputs_agree(
        Classified(label=1, probabilities={}),
        Classified(label="1", probabilities={}),
        tolerance=0.0,
    )
    assert outputs_agree(Regressed(value=100.0), Regressed(value=104.0), tolerance=0.05)
    assert not outputs_agree(Regressed(value=100.0), Regressed(value=110.0), tolerance=0.05)
    assert not outputs_agree(a, Regressed(value=1.0), tolerance=1.0)


def test_agreement_tally() -> None:
    tally = AgreementTally()
    assert tally.rate("m") is None
    for agreed in (True, True, False, True):
        tally.record("m", agreed=agreed)
    assert tally.rate("m") == 0.75


def test_histogram_buckets_are_cumulative_with_inclusive_bounds() -> None:
    histogram = Histogram([1.0, 5.0])
    for value in (0.5, 1.0, 3.0, 9.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("1", 2), ("5", 3), ("+Inf", 4)]
    assert histogram.sum == 13.5
    assert histogram.count == 4


def test_render_prometheus_text() -> None:
    metrics = WorkerMetrics()
    metrics.records = 7
    metrics.count_prediction("iris", 2, "canary", "ok")
    metrics.count_error("invalid_input")
    metrics.latency_seconds.observe(0.003)
    metrics.shadow.record("iris", agreed=True)
    metrics.shadow.record("iris", agreed=False)
    metrics.cascade_answers[("iris", "small")] += 3
    text = render_prometheus(
        metrics,
        cache_hits=3,
        cache_misses=1,
        cache_entries=4,
        consumer_lag={("t-requests", "0"): 12},
        assigned_partitions=1,
    )
    found = samples(text)
    assert kinds(text)["modelbus_inference_records"] == "counter"
    assert found["modelbus_inference_records_total"] == 7
    assert (
        found[
            'modelbus_inference_predictions_total{model="iris",status="ok",variant="canary",'
            'version="2"}'
        ]
        == 1
    )
    assert found['modelbus_inference_errors_total{code="invalid_input"}'] == 1
    assert found["modelbus_inference_cache_hit_ratio"] == 0.75
    assert found['modelbus_inference_shadow_agreement_ratio{model="iris"}'] == 0.5
    assert found['modelbus_inference_cascade_answers_total{answered_by="small",model="iris"}'] == 3
    assert found['modelbus_inference_latency_seconds_bucket{le="0.005"}'] == 1
    assert found['modelbus_inference_latency_seconds_bucket{le="+Inf"}'] == 1
    assert found['modelbus_inference_consumer_lag_records{partition="0",topic="t-requests"}'] == 12
    assert "# TYPE modelbus_inference_records_total counter" in text.splitlines()
    assert text.endswith("\n")


def test_label_values_are_escaped() -> None:
    metrics = WorkerMetrics()
    metrics.count_error('we"ird\\code\n')
    text = render_prometheus(
        metrics,
        cache_hits=0,
        cache_misses=0,
        cache_entries=0,
        consumer_lag={},
        assigned_partitions=0,
    )
    assert 'modelbus_inference_errors_total{code="we\\"ird\\\\code\\n"} 1' in text
