"""Shadow agreement and the Prometheus rendering of worker metrics."""

from __future__ import annotations

from services.inference.domain.answers import Classified, Regressed
from services.inference.domain.metrics import WorkerMetrics, render_prometheus
from services.inference.domain.shadow import AgreementTally, outputs_agree
from shared.metrics import Histogram


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
    lines = text.splitlines()
    assert "# TYPE modelbus_inference_records_total counter" in lines
    assert "modelbus_inference_records_total 7" in lines
    assert (
        'modelbus_inference_predictions_total{model="iris",version="2",variant="canary",'
        'status="ok"} 1'
    ) in lines
    assert 'modelbus_inference_errors_total{code="invalid_input"} 1' in lines
    assert "modelbus_inference_cache_hit_ratio 0.75" in lines
    assert 'modelbus_inference_shadow_agreement_ratio{model="iris"} 0.5' in lines
    assert 'modelbus_inference_cascade_answers_total{model="iris",answered_by="small"} 3' in lines
    assert 'modelbus_inference_latency_seconds_bucket{le="0.005"} 1' in lines
    assert 'modelbus_inference_latency_seconds_bucket{le="+Inf"} 1' in lines
    assert 'modelbus_inference_consumer_lag_records{topic="t-requests",partition="0"} 12' in lines
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
