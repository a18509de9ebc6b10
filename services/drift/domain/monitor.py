"""The judge's half of the drift domain: every detector of one model version behind one
door, sketches in, signals out.

Inputs (requests) feed data drift per feature; predictions feed prediction drift (the
predicted classes or values against what the version predicted on its own training
data) and the label-free performance estimate per variant; labels feed concept drift per
variant. `sketching.py` lays out each stream's batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from services.drift.domain.concept import ConceptState, LabelSketch
from services.drift.domain.data_drift import DataDriftSignal, DataDriftState
from services.drift.domain.data_sketch import DataSketch
from services.drift.domain.episodes import DriftKind, Signal
from services.drift.domain.performance import (
    ConfidenceSketch,
    PerformanceState,
)
from services.drift.domain.sketching import (
    PREDICTED,
    Compiled,
    MonitorSettings,
    prediction_profile,
)
from services.drift.domain.version_reference import VersionReference
from shared.contracts.drift_sketches import DriftSketch

LIVE = "live"
"""Performance measured from labels, against the version's offline metric."""
ESTIMATED = "estimated"
"""Performance estimated from confidence, before labels arrive."""
TOP_FEATURES = 5


class VersionMonitor:
    """The judge's half for one version: every detector's state, advanced by sketches."""

    def __init__(
        self,
        reference: VersionReference,
        settings: MonitorSettings,
        compiled: Compiled,
        *,
        data: DataDriftState | None = None,
        predicted: DataDriftState | None = None,
        concept: dict[str, ConceptState] | None = None,
        performance: dict[str, PerformanceState] | None = None,
    ) -> None:
        self._reference = reference
        self._settings = settings
        self._compiled = compiled
        self.data = data
        self.predicted = predicted
        self.concept = concept or {}
        self.performance = performance or {}

    def observe(self, sketch: DriftSketch) -> list[Signal]:
        body = sketch.body
        if sketch.stream == "requests" and "data" in body:
            if self.data is None:
                self.data = DataDriftState(
                    self._reference.profile,
                    self._settings.data,
                    compiled=self._compiled.inputs(self._reference),
                )
            return self._data_signals("data", self.data, DataSketch.from_json(body["data"]))
        if sketch.stream == "predictions":
            return self._prediction_signals(sketch)
        if sketch.stream == "labels" and "labels" in body:
            variant = sketch.variant or "production"
            state = self.concept.get(variant)
            if state is None:
                state = ConceptState.for_version(
                    self._settings.concept, variant, self._reference.offline_metrics
                )
                self.concept[variant] = state
            labels = LabelSketch.from_json(body["labels"])
            timed = LabelSketch(labels.bits, sketch.first_at, sketch.last_at)
            return [_performance_subject(signal, LIVE) for signal in state.apply(timed)]
        return []

    def _prediction_signals(self, sketch: DriftSketch) -> list[Signal]:
        body = sketch.body
        signals: list[Signal] = []
        if "predicted" in body and sketch.variant in (None, "production"):
            if self.predicted is None:
                self.predicted = DataDriftState(
                    prediction_profile(self._reference),
                    self._settings.data,
                    compiled=self._compiled.predictions(self._reference),
                )
            predicted = DataSketch.from_json(body["predicted"])
            signals += self._data_signals("prediction", self.predicted, predicted)
        if "confidence" in body:
            variant = sketch.variant or "production"
            state = self.performance.get(variant)
            if state is None:
                state = PerformanceState.start(self._settings.performance, variant)
                self.performance[variant] = state
            confidence = ConfidenceSketch.from_json(body["confidence"])
            estimated = state.apply(confidence, sketch.first_at, sketch.last_at)
            signals += [_performance_subject(signal, ESTIMATED) for signal in estimated]
        return signals

    def _data_signals(
        self, kind: DriftKind, state: DataDriftState, sketch: DataSketch
    ) -> list[Signal]:
        """Every feature's verdict after the sketch: firing while the detector holds an
        episode open, with the evidence of the transition that opened or closed it."""
        transitions = {signal.feature: signal for signal in state.apply(sketch)}
        rows = state.status()
        top = _top_features(rows, state)
        signals = []
        for row in rows:
            name = row["feature"]
            transition = transitions.get(name)
            signals.append(_feature_signal(kind, row, transition, top, state))
        return signals

    def to_json(self) -> dict[str, Any]:
        return {
            "data": None if self.data is None else self.data.to_json(),
            "predicted": None if self.predicted is None else self.predicted.to_json(),
            "concept": {variant: state.to_json() for variant, state in self.concept.items()},
            "performance": {
                variant: state.to_json() for variant, state in self.performance.items()
            },
        }


class VersionMonitors:
    """Builds and restores monitors (the judge's factory)."""

    def __init__(self, settings: MonitorSettings) -> None:
        self._settings = settings
        self._compiled = Compiled(settings.data)

    def new(self, reference: VersionReference) -> VersionMonitor:
        return VersionMonitor(reference, self._settings, self._compiled)

    def restore(self, reference: VersionReference, state: Mapping[str, Any]) -> VersionMonitor:
        compiled = self._compiled
        return VersionMonitor(
            reference,
            self._settings,
            compiled,
            data=(
                DataDriftState.from_json(
                    state["data"], reference.profile, compiled=compiled.inputs(reference)
                )
                if state.get("data")
                else None
            ),
            predicted=(
                DataDriftState.from_json(
                    state["predicted"],
                    prediction_profile(reference),
                    compiled=compiled.predictions(reference),
                )
                if state.get("predicted")
                else None
            ),
            concept={
                variant: ConceptState.from_json(value)
                for variant, value in state.get("concept", {}).items()
            },
            performance={
                variant: PerformanceState.from_json(value)
                for variant, value in state.get("performance", {}).items()
            },
        )


def _performance_subject(signal: Signal, source: str) -> Signal:
    """Measured and estimated performance are separate episodes of a variant ("production:
    live", "production:estimated"): a wrong uploaded metric that keeps one open must not
    mute the other."""
    if signal.kind != "performance":
        return signal
    return replace(signal, subject=f"{signal.subject}:{source}")


def _feature_signal(
    kind: DriftKind,
    row: Mapping[str, Any],
    transition: DataDriftSignal | None,
    top: list[dict[str, Any]],
    state: DataDriftState,
) -> Signal:
    is_open = bool(row["open"])
    levels: Mapping[str, float] = row.get("levels", {})
    ratio = float(row.get("level_ratio", 0.0))
    statistic = transition.statistic if transition is not None else ratio
    threshold = transition.threshold if transition is not None else 1.0
    method = transition.method if transition is not None else "cusum_level_ratio"
    evidence: dict[str, Any] = {"levels": dict(levels), "top_features": top}
    reference: Mapping[str, Any] = {}
    current: Mapping[str, Any] = {}
    window_start: datetime | None = None
    if transition is not None:
        reference = transition.evidence.get("reference", {})
        current = transition.evidence.get("current", {})
        evidence |= {
            k: v for k, v in transition.evidence.items() if k not in ("reference", "current")
        }
    return Signal(
        kind=kind,
        subject=row["feature"] if kind == "data" else PREDICTED,
        method=method,
        statistic=statistic,
        threshold=threshold,
        firing=is_open,
        quiet=not is_open,
        severity=transition.severity if transition is not None else "warning",
        window_size=transition.window_size if transition is not None else max(1, state.events),
        window_start=window_start,
        reference=reference,
        current=current,
        evidence=evidence,
    )


def _top_features(rows: Sequence[Mapping[str, Any]], state: DataDriftState) -> list[dict[str, Any]]:
    ranked = sorted(rows, key=lambda row: -float(row.get("level_ratio", 0.0)))
    return [
        {
            "feature": row["feature"],
            "method": "cusum_level_ratio",
            "statistic": float(row.get("level_ratio", 0.0)),
            "threshold": 1.0,
        }
        for row in ranked[:TOP_FEATURES]
        if "level_ratio" in row
    ]
