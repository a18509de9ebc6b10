"""The feedback service's Prometheus counters, touched only from its event loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.feedback.domain.quality import VariantQuality
from shared.metrics import PrometheusText

PREFIX = "modelbus_feedback_"


@dataclass
class JoinMetrics:
    """What operators watch: records read, feedback joined, refused and unmatched."""

    records_read: int = 0
    feedback_joined: int = 0
    feedback_refused: int = 0
    feedback_unmatched: int = 0
    labels_published: int = 0

    def render(self, out: PrometheusText) -> None:
        counters = (
            ("records_read_total", "Records read from the three topics.", self.records_read),
            ("feedback_joined_total", "Feedback joined to its prediction.", self.feedback_joined),
            ("feedback_refused_total", "Feedback refused, dead-lettered.", self.feedback_refused),
            ("feedback_unmatched_total", "Feedback never matched.", self.feedback_unmatched),
            ("labels_published_total", "Label records produced.", self.labels_published),
        )
        for name, help_text, value in counters:
            out.family(name, "counter", help_text, [((), value)])


def render_quality(out: PrometheusText, figures: Sequence[VariantQuality]) -> None:
    """Gauges of the latest live-quality measurement, labelled by model, version, variant."""
    for name, help_text, read in (
        ("live_accuracy", "Share of labelled predictions that were right.", "accuracy"),
        ("live_accuracy_low", "Wilson 95% lower bound of live accuracy.", "accuracy_low"),
        ("live_mae", "Mean absolute error of labelled regressions.", "mae"),
        ("label_coverage", "Share of predictions with a label.", "coverage"),
        (
            "label_delay_p95_seconds",
            "95th percentile of prediction-to-label delay.",
            "delay_p95_seconds",
        ),
    ):
        samples = [
            ((q.model, str(q.version), q.variant), getattr(q, read))
            for q in figures
            if getattr(q, read) is not None
        ]
        if samples:
            out.family(name, "gauge", help_text, samples, ("model", "version", "variant"))
    conflicts = [((q.model, str(q.version), q.variant), q.conflicts) for q in figures]
    if conflicts:
        out.family(
            "label_conflicts",
            "gauge",
            "Labelled predictions with disagreeing feedback.",
            conflicts,
            ("model", "version", "variant"),
        )


def new_text() -> PrometheusText:
    return PrometheusText(PREFIX)
