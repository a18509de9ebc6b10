"""What a worker counts, and its rendering in the Prometheus text exposition format."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from services.inference.domain.shadow import AgreementTally
from shared.metrics import Histogram, PrometheusText

PREFIX = "modelbus_inference_"
LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS: tuple[float, ...] = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
OTHER_LABEL = "other"
"""The label of a model or version the catalogue does not vouch for."""

PredictionLabels = Callable[[str, int, str], tuple[str, str]]
"""(model, version, status) -> the model and version labels a prediction is counted under.
The worker wires the catalogue's: labels a request chose freely would make a series each."""


def labels_as_given(model: str, version: int, status: str) -> tuple[str, str]:
    return model, str(version)


@dataclass
class WorkerMetrics:
    """Counters of one worker process; read by /metrics, written only by the event loop."""

    records: int = 0
    batches: int = 0
    batch_retries: int = 0
    batch_sizes: Histogram = field(default_factory=lambda: Histogram(BATCH_SIZE_BUCKETS))
    latency_seconds: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS_SECONDS))
    predictions: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    cascade_answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    shadow: AgreementTally = field(default_factory=AgreementTally)
    model_events: Counter[str] = field(default_factory=Counter)
    prediction_labels: PredictionLabels = labels_as_given

    def count_prediction(self, model: str, version: int, variant: str, status: str) -> None:
        model_label, version_label = self.prediction_labels(model, version, status)
        self.predictions[(model_label, version_label, variant, status)] += 1

    def count_error(self, code: str) -> None:
        self.errors[code] += 1


def render_prometheus(
    metrics: WorkerMetrics,
    *,
    cache_hits: int,
    cache_misses: int,
    cache_entries: int,
    consumer_lag: Mapping[tuple[str, str], int],
    assigned_partitions: int,
) -> str:
    """Every worker metric in Prometheus text format."""
    out = PrometheusText(PREFIX)
    out.family(
        "records_total", "counter", "Records consumed from requests.", [((), metrics.records)]
    )
    out.family("batches_total", "counter", "Micro-batches processed.", [((), metrics.batches)])
    out.family(
        "batch_retries_total",
        "counter",
        "Batches retried after a transient failure (registry or Kafka).",
        [((), metrics.batch_retries)],
    )
    out.histogram("batch_size_records", "Records per micro-batch.", metrics.batch_sizes)
    out.histogram(
        "latency_seconds",
        "Time from request creation to its answer.",
        metrics.latency_seconds,
    )
    out.family(
        "predictions_total",
        "counter",
        "Predictions published, by model, version, variant and status.",
        metrics.predictions.items(),
        ("model", "version", "variant", "status"),
    )
    out.family(
        "errors_total",
        "counter",
        "Error predictions by error code.",
        [((code,), count) for code, count in metrics.errors.items()],
        ("code",),
    )
    out.family(
        "dead_letters_total",
        "counter",
        "Unreadable records sent to the dead-letter topic, by reason.",
        [((code,), count) for code, count in metrics.dead_letters.items()],
        ("code",),
    )
    out.family("cache_hits_total", "counter", "Result cache hits.", [((), cache_hits)])
    out.family("cache_misses_total", "counter", "Result cache misses.", [((), cache_misses)])
    lookups = cache_hits + cache_misses
    out.family(
        "cache_hit_ratio",
        "gauge",
        "Result cache hits over lookups since start.",
        [((), cache_hits / lookups if lookups else 0.0)],
    )
    out.family("cache_entries", "gauge", "Entries in the result cache.", [((), cache_entries)])
    out.family(
        "cascade_answers_total",
        "counter",
        "Cascade answers by model and by which model answered (small or big).",
        metrics.cascade_answers.items(),
        ("model", "answered_by"),
    )
    tally = metrics.shadow
    out.family(
        "shadow_comparisons_total",
        "counter",
        "Shadow answers compared with production.",
        [((model,), count) for model, count in tally.compared.items()],
        ("model",),
    )
    out.family(
        "shadow_agreements_total",
        "counter",
        "Shadow answers that agreed with production.",
        [((model,), tally.agreed.get(model, 0)) for model in tally.compared],
        ("model",),
    )
    out.family(
        "shadow_agreement_ratio",
        "gauge",
        "Share of shadow answers agreeing with production.",
        [((model,), tally.rate(model) or 0.0) for model in tally.compared],
        ("model",),
    )
    out.family(
        "model_events_total",
        "counter",
        "Model events applied, by type.",
        [((kind,), count) for kind, count in metrics.model_events.items()],
        ("event_type",),
    )
    out.family(
        "assigned_partitions",
        "gauge",
        "Partitions of requests assigned to this worker.",
        [((), assigned_partitions)],
    )
    out.family(
        "consumer_lag_records",
        "gauge",
        "Records not yet consumed, per assigned partition.",
        consumer_lag.items(),
        ("topic", "partition"),
    )
    return out.text()
