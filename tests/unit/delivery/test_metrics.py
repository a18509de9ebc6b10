"""The /metrics text is valid Prometheus exposition with cumulative latency buckets."""

from __future__ import annotations

from services.delivery.adapters.metrics import DeliveryMetrics
from tests.support.prometheus import kinds, samples


def test_rendered_metrics() -> None:
    metrics = DeliveryMetrics()
    metrics.delivered = 3
    metrics.failed_attempts = 2
    metrics.count_dead("refused")
    for seconds in (0.004, 0.03, 0.2, 50.0):
        metrics.webhook_latency.observe(seconds)
    text = metrics.render(backlog=7, connect_attempts=5, refused_connections=0)
    found = samples(text)
    assert found["modelbus_delivery_webhooks_delivered_total"] == 3
    assert found["modelbus_delivery_attempts_failed_total"] == 2
    assert found['modelbus_delivery_webhooks_dead_total{reason="refused"}'] == 1
    assert found["modelbus_delivery_backlog"] == 7
    assert found['modelbus_delivery_webhook_latency_seconds_bucket{le="0.005"}'] == 1
    assert found['modelbus_delivery_webhook_latency_seconds_bucket{le="0.05"}'] == 2
    assert found['modelbus_delivery_webhook_latency_seconds_bucket{le="30"}'] == 3
    assert found['modelbus_delivery_webhook_latency_seconds_bucket{le="+Inf"}'] == 4
    assert found["modelbus_delivery_webhook_latency_seconds_count"] == 4
    assert kinds(text)["modelbus_delivery_webhook_latency_seconds"] == "histogram"
