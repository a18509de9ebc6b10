"""The /metrics text is valid Prometheus exposition with cumulative latency buckets."""

from __future__ import annotations

from services.delivery.adapters.metrics import DeliveryMetrics


def test_rendered_metrics() -> None:
    metrics = DeliveryMetrics()
    metrics.delivered = 3
    metrics.failed_attempts = 2
    metrics.count_dead("refused")
    for seconds in (0.004, 0.03, 0.2, 50.0):
        metrics.webhook_latency.observe(seconds)
    text = metrics.render(backlog=7, connect_attempts=5, refused_connections=0)
    lines = text.splitlines()
    assert "modelbus_delivery_webhooks_delivered_total 3" in lines
    assert "modelbus_delivery_attempts_failed_total 2" in lines
    assert 'modelbus_delivery_webhooks_dead_total{reason="refused"} 1' in lines
    assert "modelbus_delivery_backlog 7" in lines
    assert 'modelbus_delivery_webhook_latency_seconds_bucket{le="0.005"} 1' in lines
    assert 'modelbus_delivery_webhook_latency_seconds_bucket{le="0.05"} 2' in lines
    assert 'modelbus_delivery_webhook_latency_seconds_bucket{le="30"} 3' in lines
    assert 'modelbus_delivery_webhook_latency_seconds_bucket{le="+Inf"} 4' in lines
    assert "modelbus_delivery_webhook_latency_seconds_count 4" in lines
    assert all(line.startswith("#") or len(line.split(" ")) == 2 for line in lines)
