"""The delivery service's Prometheus metrics: a few counters, two gauges and one latency
histogram, all touched only from the service's event loop."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.metrics import Histogram, PrometheusText

PREFIX = "modelbus_delivery_"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class DeliveryMetrics:
    """What operators watch: throughput, failures, dead deliveries, backlog and latency."""

    predictions_recorded: int = 0
    records_dead_lettered: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dead: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    webhook_latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))

    def count_dead(self, reason: str) -> None:
        self.dead[reason] = self.dead.get(reason, 0) + 1

    def render(
        self, *, backlog: int | None, connect_attempts: int, refused_connections: int
    ) -> str:
        """The Prometheus text exposition of every metric."""
        out = PrometheusText(PREFIX)
        out.family(
            "predictions_recorded_total",
            "counter",
            "Predictions read from Kafka and recorded in the job store.",
            [((), self.predictions_recorded)],
        )
        out.family(
            "records_dead_lettered_total",
            "counter",
            "Unreadable or unrecordable predictions records sent to dead-letters.",
            [((), self.records_dead_lettered)],
        )
        out.family(
            "webhooks_delivered_total",
            "counter",
            "Webhooks a receiver accepted with a 2xx status.",
            [((), self.delivered)],
        )
        out.family(
            "attempts_failed_total",
            "counter",
            "Webhook attempts that got no 2xx (error status, timeout, connection error).",
            [((), self.failed_attempts)],
        )
        out.family(
            "webhooks_dead_total",
            "counter",
            "Deliveries given up: exhausted retries, 410 Gone, or a refused callback URL.",
            [((reason,), count) for reason, count in self.dead.items()] or [(("exhausted",), 0)],
            ("reason",),
        )
        out.family(
            "in_flight",
            "gauge",
            "Webhook attempts under way in this replica.",
            [((), self.in_flight)],
        )
        if backlog is not None:
            out.family(
                "backlog",
                "gauge",
                "Webhooks waiting to be sent or retried (all replicas).",
                [((), backlog)],
            )
        out.family(
            "connect_attempts_total",
            "counter",
            "TCP connections this replica tried to open to callback receivers.",
            [((), connect_attempts)],
        )
        out.family(
            "connections_refused_total",
            "counter",
            "Connections refused because the host was not the checked callback host.",
            [((), refused_connections)],
        )
        out.histogram(
            "webhook_latency_seconds",
            "Time from sending a webhook to the receiver's answer.",
            self.webhook_latency,
        )
        return out.text()
