"""The delivery service's Prometheus metrics, rendered in the text exposition format.

Small enough to write by hand rather than pull in a client library: a few counters, two
gauges and one latency histogram, all touched only from the service's event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Histogram:
    """Cumulative buckets, sum and count, as Prometheus expects them."""

    buckets: Sequence[float] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    observations: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.observations += 1
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1


@dataclass
class DeliveryMetrics:
    """What operators watch: throughput, failures, dead deliveries, backlog and latency."""

    predictions_recorded: int = 0
    records_dead_lettered: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dead: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    webhook_latency: Histogram = field(default_factory=Histogram)

    def count_dead(self, reason: str) -> None:
        self.dead[reason] = self.dead.get(reason, 0) + 1

    def render(
        self, *, backlog: int | None, connect_attempts: int, refused_connections: int
    ) -> str:
        """The Prometheus text exposition of every metric."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

        metric(
            "modelbus_delivery_predictions_recorded_total",
            "counter",
            "Predictions read from Kafka and recorded in the job store.",
            [("", self.predictions_recorded)],
        )
        metric(
            "modelbus_delivery_records_dead_lettered_total",
            "counter",
            "Unreadable or unrecordable predictions records sent to dead-letters.",
            [("", self.records_dead_lettered)],
        )
        metric(
            "modelbus_delivery_webhooks_delivered_total",
            "counter",
            "Webhooks a receiver accepted with a 2xx status.",
            [("", self.delivered)],
        )
        metric(
            "modelbus_delivery_attempts_failed_total",
            "counter",
            "Webhook attempts that got no 2xx (error status, timeout, connection error).",
            [("", self.failed_attempts)],
        )
        metric(
            "modelbus_delivery_webhooks_dead_total",
            "counter",
            "Deliveries given up: exhausted retries, 410 Gone, or a refused callback URL.",
            [(f'{{reason="{reason}"}}', count) for reason, count in sorted(self.dead.items())]
            or [('{reason="exhausted"}', 0)],
        )
        metric(
            "modelbus_delivery_in_flight",
            "gauge",
            "Webhook attempts under way in this replica.",
            [("", self.in_flight)],
        )
        if backlog is not None:
            metric(
                "modelbus_delivery_backlog",
                "gauge",
                "Webhooks waiting to be sent or retried (all replicas).",
                [("", backlog)],
            )
        metric(
            "modelbus_delivery_connect_attempts_total",
            "counter",
            "TCP connections this replica tried to open to callback receivers.",
            [("", connect_attempts)],
        )
        metric(
            "modelbus_delivery_connections_refused_total",
            "counter",
            "Connections refused because the host was not the checked callback host.",
            [("", refused_connections)],
        )
        histogram = self.webhook_latency
        buckets = [
            (f'{{le="{_number(bound)}"}}', float(count))
            for bound, count in zip(histogram.buckets, histogram.counts, strict=True)
        ]
        buckets.append(('{le="+Inf"}', float(histogram.observations)))
        name = "modelbus_delivery_webhook_latency_seconds"
        lines.append(f"# HELP {name} Time from sending a webhook to the receiver's answer.")
        lines.append(f"# TYPE {name} histogram")
        lines.extend(f"{name}_bucket{labels} {_number(value)}" for labels, value in buckets)
        lines.append(f"{name}_sum {_number(histogram.total)}")
        lines.append(f"{name}_count {histogram.observations}")
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
