"""The drift service's Prometheus text: what its loops did, and which episodes are open."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.metrics import PrometheusText

if TYPE_CHECKING:
    from services.drift.bootstrap import DriftService

PREFIX = "modelbus_drift_"


def render_metrics(service: DriftService) -> str:
    out = PrometheusText(PREFIX)
    sketching, judging = service.sketch_process, service.judge_process
    counters = []
    if sketching is not None:
        counts = sketching.sketcher_counts
        counters += [
            ("sketches_total", "Sketches published by the sketcher.", counts.sketches),
            ("records_unreadable_total", "Records that could not be read.", sketching.unreadable),
            (
                "records_without_reference_total",
                "Records of a model or version the registry does not know.",
                counts.skipped_no_reference,
            ),
            (
                "labels_repeated_total",
                "Labels republished with a label_id already measured, not counted again.",
                counts.labels_repeated,
            ),
            (
                "records_not_measured_total",
                "Error answers and weak labels, not measured.",
                counts.skipped_not_measured,
            ),
        ]
    if judging is not None:
        counters += [
            ("sketches_applied_total", "Sketches the judge applied.", judging.sketches_applied),
            (
                "sketches_refused_total",
                "Sketches that did not fit their version, skipped.",
                judging.sketches_refused,
            ),
            ("alerts_total", "Alert records published.", judging.alerts_published),
        ]
    for name, help_text, value in counters:
        out.family(name, "counter", help_text, [((), value)])
    open_episodes = []
    for (model, version), record in sorted(service.view.latest().items()):
        for name, episode in record.state.get("episodes", {}).items():
            if episode.get("open"):
                kind, _, subject = name.partition(":")
                open_episodes.append(((model, str(version), kind, subject), 1.0))
    out.family(
        "episode_open",
        "gauge",
        "1 while a drift episode is open.",
        open_episodes,
        label_names=("model", "version", "kind", "subject"),
    )
    return out.text()
