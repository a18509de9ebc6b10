"""The feedback service's Prometheus counters, touched only from its event loop."""

from __future__ import annotations

from dataclasses import dataclass

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


def new_text() -> PrometheusText:
    return PrometheusText(PREFIX)
