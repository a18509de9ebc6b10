"""A label-free performance estimate (the idea of NannyML's CBPE): a window's expected
accuracy from each prediction's confidence, calibrated on the labels that do arrive, so a
drop shows before its labels do.

Everything is counts per fixed confidence bin, so sketches from any sketcher merge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from statistics import NormalDist
from typing import Any

import numpy as np

from services.drift.domain.episodes import Signal
from shared.contracts.predictions import ClassifierOutput, Prediction

BINS = 20
"""Equal-width confidence bins on [0, 1]: fixed, so every sketch lines up."""


@dataclass(frozen=True)
class PerformanceSettings:
    """How the estimate is compared with its reference."""

    reference_predictions: int = 5000
    """The stream's first predictions: their estimate is the reference."""
    window: int = 1000
    """Predictions per tumbling window compared with the reference."""
    margin: float = 0.02
    """How far under the reference the estimate must be before it counts."""
    false_alarms_per_window: float = 1e-3
    prior_strength: float = 20.0
    """Pseudo-labels at the bin's raw confidence: a bin with few labels keeps the model's
    own confidence, one with many follows its observed accuracy (histogram binning)."""

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be {rule}"
            for name, broken, rule in (
                ("reference_predictions", self.reference_predictions < 1, "at least 1"),
                ("window", self.window < 1, "at least 1"),
                ("margin", not 0 <= self.margin < 1, "in [0, 1)"),
                (
                    "false_alarms_per_window",
                    not 0 < self.false_alarms_per_window < 0.5,
                    "in (0, 0.5)",
                ),
                ("prior_strength", not self.prior_strength > 0, "over 0"),
            )
            if broken
        ]
        if problems:
            raise ValueError("performance settings: " + "; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def confidence_of(output: ClassifierOutput) -> float:
    """The predicted class's probability, NaN when the probabilities are unusable."""
    values = np.fromiter(output.probabilities.values(), dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)):
        return math.nan
    return float(values.max())


# -- sketches ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfidenceSketch:
    """Predictions per confidence bin, the sum of their confidences, and how many were
    unusable (NaN, outside [0, 1]). Adding two is merging them."""

    counts: tuple[int, ...] = (0,) * BINS
    sums: tuple[float, ...] = (0.0,) * BINS
    unusable: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts)

    def plus(self, other: ConfidenceSketch) -> ConfidenceSketch:
        return ConfidenceSketch(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            tuple(a + b for a, b in zip(self.sums, other.sums, strict=True)),
            self.unusable + other.unusable,
        )

    def to_json(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sums": list(self.sums), "unusable": self.unusable}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConfidenceSketch:
        counts = tuple(int(value) for value in data["counts"])
        sums = tuple(float(value) for value in data["sums"])
        if len(counts) != BINS or len(sums) != BINS:
            raise ValueError(f"a confidence sketch has {BINS} bins")
        return cls(counts, sums, int(data.get("unusable", 0)))


@dataclass(frozen=True)
class CalibrationSketch:
    """Labelled predictions per confidence bin and how many of them were right."""

    labelled: tuple[int, ...] = (0,) * BINS
    correct: tuple[int, ...] = (0,) * BINS
    sums: tuple[float, ...] = (0.0,) * BINS

    def plus(self, other: CalibrationSketch) -> CalibrationSketch:
        return CalibrationSketch(
            tuple(a + b for a, b in zip(self.labelled, other.labelled, strict=True)),
            tuple(a + b for a, b in zip(self.correct, other.correct, strict=True)),
            tuple(a + b for a, b in zip(self.sums, other.sums, strict=True)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "labelled": list(self.labelled),
            "correct": list(self.correct),
            "sums": list(self.sums),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CalibrationSketch:
        found = cls(
            tuple(int(value) for value in data["labelled"]),
            tuple(int(value) for value in data["correct"]),
            tuple(float(value) for value in data["sums"]),
        )
        if not len(found.labelled) == len(found.correct) == len(found.sums) == BINS:
            raise ValueError(f"a calibration sketch has {BINS} bins")
        return found


def _bins_of(confidences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    usable = np.isfinite(confidences) & (confidences >= 0.0) & (confidences <= 1.0)
    bins = np.minimum((np.where(usable, confidences, 0.0) * BINS).astype(np.int64), BINS - 1)
    return bins, usable


def sketch_confidences(confidences: Sequence[float] | np.ndarray) -> ConfidenceSketch:
    """Bin counts of a batch's confidences, vectorised."""
    values = np.asarray(confidences, dtype=float).ravel()
    bins, usable = _bins_of(values)
    counts = np.bincount(bins[usable], minlength=BINS)
    sums = np.bincount(bins[usable], weights=values[usable], minlength=BINS)
    return ConfidenceSketch(
        tuple(int(value) for value in counts),
        tuple(float(value) for value in sums),
        int(values.size - usable.sum()),
    )


def sketch_calibration(
    confidences: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray
) -> CalibrationSketch:
    """Bin counts of labelled predictions (confidence at prediction, whether it was right)."""
    values = np.asarray(confidences, dtype=float).ravel()
    right = np.asarray(correct, dtype=bool).ravel()
    if values.size != right.size:
        raise ValueError("one correctness flag per confidence")
    bins, usable = _bins_of(values)
    chosen = bins[usable]
    return CalibrationSketch(
        tuple(int(value) for value in np.bincount(chosen, minlength=BINS)),
        tuple(int(value) for value in np.bincount(chosen[right[usable]], minlength=BINS)),
        tuple(
            float(value) for value in np.bincount(chosen, weights=values[usable], minlength=BINS)
        ),
    )


def sketch_predictions(
    predictions: Iterable[Prediction],
) -> dict[tuple[str, int, str], ConfidenceSketch]:
    """Per (model, version, variant), the confidence sketch of a batch's classifier answers."""
    found: dict[tuple[str, int, str], list[float]] = {}
    for prediction in predictions:
        if isinstance(prediction.output, ClassifierOutput):
            key = (prediction.model, prediction.version, prediction.variant)
            found.setdefault(key, []).append(confidence_of(prediction.output))
    return {key: sketch_confidences(values) for key, values in found.items()}


# -- the estimate ------------------------------------------------------------------------------


def calibrated_accuracy(
    calibration: CalibrationSketch, window: ConfidenceSketch, prior_strength: float
) -> np.ndarray:
    """P(right | bin): the bin's observed accuracy shrunk toward its raw confidence."""
    counts = np.asarray(window.counts, dtype=float)
    labelled = np.asarray(calibration.labelled, dtype=float)
    raw = np.where(
        labelled > 0,
        np.asarray(calibration.sums) / np.maximum(labelled, 1),
        np.where(
            counts > 0,
            np.asarray(window.sums) / np.maximum(counts, 1),
            (np.arange(BINS) + 0.5) / BINS,
        ),
    )
    correct = np.asarray(calibration.correct, dtype=float)
    return np.asarray((correct + prior_strength * raw) / (labelled + prior_strength))


def estimate(
    calibration: CalibrationSketch, window: ConfidenceSketch, prior_strength: float
) -> tuple[float, float]:
    """(expected accuracy of the window, its standard error); NaN on an empty window."""
    total = window.total
    if total == 0:
        return math.nan, math.nan
    accuracy = calibrated_accuracy(calibration, window, prior_strength)
    counts = np.asarray(window.counts, dtype=float)
    mean = float((counts * accuracy).sum() / total)
    spread = float((counts * (accuracy - mean) ** 2).sum() / total)
    return mean, math.sqrt(spread / total)


# -- the detector state ------------------------------------------------------------------------


@dataclass
class PerformanceState:
    """The estimate for one (model, version, variant): reference, current window and the
    calibration learnt from labels."""

    settings: PerformanceSettings
    subject: str
    reference: ConfidenceSketch = ConfidenceSketch()
    current: ConfidenceSketch = ConfidenceSketch()
    calibration: CalibrationSketch = CalibrationSketch()
    predictions: int = 0
    window_start_at: datetime | None = None

    @classmethod
    def start(cls, settings: PerformanceSettings, subject: str) -> PerformanceState:
        return cls(settings=settings, subject=subject)

    def learn(self, labelled: CalibrationSketch) -> None:
        """Add labelled predictions to the calibration."""
        self.calibration = self.calibration.plus(labelled)

    def apply(
        self,
        sketch: ConfidenceSketch,
        first_at: datetime | None = None,
        last_at: datetime | None = None,
    ) -> list[Signal]:
        """Add a batch's confidences; a signal when a window closes.

        A batch lands whole in one window (a sketch cannot be split), so windows hold at
        least `window` predictions.
        """
        if sketch.total == 0:
            return []
        self.predictions += sketch.total
        if self.reference.total < self.settings.reference_predictions:
            self.reference = self.reference.plus(sketch)
            return []
        if self.current.total == 0:
            self.window_start_at = first_at
        self.current = self.current.plus(sketch)
        if self.current.total < self.settings.window:
            return []
        signal = self._compare(last_at)
        self.current = ConfidenceSketch()
        return [signal]

    def estimates(self) -> dict[str, float]:
        """Reference and current estimates with their standard errors (for status pages)."""
        strength = self.settings.prior_strength
        reference, reference_error = estimate(self.calibration, self.reference, strength)
        current, current_error = estimate(self.calibration, self.current, strength)
        return {
            "reference": reference,
            "reference_error": reference_error,
            "current": current,
            "current_error": current_error,
        }

    def _compare(self, last_at: datetime | None) -> Signal:
        strength = self.settings.prior_strength
        reference, reference_error = estimate(self.calibration, self.reference, strength)
        current, current_error = estimate(self.calibration, self.current, strength)
        z = NormalDist().inv_cdf(1 - self.settings.false_alarms_per_window)
        spread = math.hypot(reference_error, current_error) or 1e-12
        drop = (reference - current - self.settings.margin) / spread
        labelled = sum(self.calibration.labelled)
        raw = sum(self.current.sums) / self.current.total
        return Signal(
            kind="performance",
            subject=self.subject,
            method="cbpe",
            statistic=round(drop, 6),
            threshold=round(z, 6),
            firing=drop > z,
            quiet=current >= reference - self.settings.margin,
            at=last_at,
            window_size=self.current.total,
            window_start=self.window_start_at,
            window_end=last_at,
            reference={
                "estimated_accuracy": reference,
                "standard_error": reference_error,
                "predictions": self.reference.total,
            },
            current={
                "estimated_accuracy": current,
                "standard_error": current_error,
                "raw_confidence": raw,
                "predictions": self.current.total,
                "unusable": self.current.unusable,
            },
            evidence={"labelled_for_calibration": labelled, "margin": self.settings.margin},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_json(),
            "subject": self.subject,
            "reference": self.reference.to_json(),
            "current": self.current.to_json(),
            "calibration": self.calibration.to_json(),
            "predictions": self.predictions,
            "window_start_at": self.window_start_at.isoformat() if self.window_start_at else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PerformanceState:
        start = data.get("window_start_at")
        return cls(
            settings=PerformanceSettings(**data["settings"]),
            subject=str(data["subject"]),
            reference=ConfidenceSketch.from_json(data["reference"]),
            current=ConfidenceSketch.from_json(data["current"]),
            calibration=CalibrationSketch.from_json(data["calibration"]),
            predictions=int(data["predictions"]),
            window_start_at=datetime.fromisoformat(start) if isinstance(start, str) else None,
        )
