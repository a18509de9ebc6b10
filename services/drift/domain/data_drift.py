"""Data drift of one model version: CUSUM levels and windowed tests advanced by sketches,
with alert episodes per feature (one signal opens an episode, one closes it).

An episode opens when a CUSUM level crosses its threshold or the feature's windowed test
is rejected by Benjamini-Hochberg; it closes once every level of the feature is back at
or below its closing level and its last window was not rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from services.drift.domain.channels import CHANNELS
from services.drift.domain.data_sketch import DataSketch
from services.drift.domain.reference import CompiledReference, compile_reference
from services.drift.domain.settings import DataDriftSettings
from services.drift.domain.summaries import categorical_summary, numeric_summary
from services.drift.domain.window_verdict import WindowVerdict, judge_window
from shared.profile import ReferenceProfile

Transition = Literal["opened", "closed"]


@dataclass(frozen=True)
class DataDriftSignal:
    """An episode opening or closing for one feature, with its evidence."""

    feature: str
    transition: Transition
    method: str
    statistic: float
    threshold: float
    severity: Literal["warning", "critical"]
    window_size: int
    window_start: int | None
    window_end: int | None
    evidence: dict[str, Any] = field(default_factory=dict)
    kind: Literal["data"] = "data"


class DataDriftState:
    """Detector state of one model version; pure, restored exactly from `to_json()`."""

    def __init__(
        self,
        profile: ReferenceProfile,
        settings: DataDriftSettings | None = None,
        *,
        compiled: CompiledReference | None = None,
    ):
        """`compiled` is `profile` compiled already (a judge restores the state every
        batch; compiling it again each time cost milliseconds); it is used only if it was
        compiled with these settings."""
        settings = settings or DataDriftSettings()
        fits = compiled is not None and compiled.settings == settings
        self.reference: CompiledReference = (
            compiled if compiled is not None and fits else compile_reference(profile, settings)
        )
        numeric = len(self.reference.numeric.names)
        features = numeric + len(self.reference.categorical.names)
        self.levels = np.zeros((numeric, len(CHANNELS)))
        self.open = np.zeros(features, dtype=bool)
        self.window: DataSketch | None = None
        self.last_window: DataSketch | None = None
        self.last_rejected = np.zeros(features, dtype=bool)
        self.events = 0

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.reference.numeric.names + self.reference.categorical.names

    def apply(self, sketch: DataSketch) -> list[DataDriftSignal]:
        """Advance every detector by one sketch (stream order) and say which episodes
        opened or closed."""
        numeric = self.reference.numeric
        self._check_shape(sketch)
        highest = sketch.numeric.cusum.highest_levels(self.levels)
        crossed = highest >= numeric.thresholds
        self.levels = sketch.numeric.cusum.end_levels(self.levels)
        self.events += sketch.events
        self.window = sketch if self.window is None else self.window.then(sketch)
        recent = self.window
        outcome = None
        if self.window.events >= self.reference.settings.window_events:
            outcome = judge_window(self.reference, self.window)
            self.last_window, self.window = self.window, None
            self.last_rejected = outcome.rejected
        signals: list[DataDriftSignal] = []
        for index, name in enumerate(self.feature_names):
            is_numeric = index < len(numeric.names)
            sequential = bool(crossed[index].any()) if is_numeric else False
            windowed = outcome is not None and bool(outcome.rejected[index])
            if not self.open[index] and (sequential or windowed):
                self.open[index] = True
                signals.append(self._opened(index, name, recent, highest, outcome, sequential))
            elif self.open[index] and self._settled(index):
                self.open[index] = False
                signals.append(self._closed(index, name))
        return signals

    def status(self) -> list[dict[str, Any]]:
        """Per feature: open episode, CUSUM levels against thresholds, last window's p."""
        numeric = self.reference.numeric
        rows = []
        for index, name in enumerate(self.feature_names):
            row: dict[str, Any] = {"feature": name, "open": bool(self.open[index])}
            if index < len(numeric.names):
                row["levels"] = dict(zip(CHANNELS, self.levels[index].tolist(), strict=True))
                row["level_ratio"] = float(np.max(self.levels[index] / numeric.thresholds[index]))
            row["last_window_rejected"] = bool(self.last_rejected[index])
            rows.append(row)
        return rows

    # -- persistence ------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.reference.settings.model_dump(),
            "levels": self.levels.tolist(),
            "open": self.open.tolist(),
            "window": None if self.window is None else self.window.to_json(),
            "last_window": None if self.last_window is None else self.last_window.to_json(),
            "last_rejected": self.last_rejected.tolist(),
            "events": self.events,
        }

    @classmethod
    def from_json(
        cls,
        data: dict[str, Any],
        profile: ReferenceProfile,
        *,
        compiled: CompiledReference | None = None,
    ) -> DataDriftState:
        settings = DataDriftSettings.model_validate(data["settings"])
        state = cls(profile, settings, compiled=compiled)
        state.levels = np.asarray(data["levels"], dtype=np.float64).reshape(state.levels.shape)
        state.open = np.asarray(data["open"], dtype=bool)
        state.window = None if data["window"] is None else DataSketch.from_json(data["window"])
        last = data["last_window"]
        state.last_window = None if last is None else DataSketch.from_json(last)
        state.last_rejected = np.asarray(data["last_rejected"], dtype=bool)
        state.events = int(data["events"])
        return state

    # -- internals --------------------------------------------------------------------

    def _check_shape(self, sketch: DataSketch) -> None:
        numeric = len(self.reference.numeric.names)
        categorical = len(self.reference.categorical.names)
        got = (sketch.numeric.count.size, len(sketch.categorical.counts))
        if got != (numeric, categorical):
            raise ValueError(
                f"the sketch has {got[0]} numeric and {got[1]} categorical features, the "
                f"reference {numeric} and {categorical}: it was made for another reference"
            )

    def _settled(self, index: int) -> bool:
        numeric = self.reference.numeric
        if self.last_rejected[index]:
            return False
        if index >= len(numeric.names):
            return True
        return bool(np.all(self.levels[index] <= numeric.close_levels[index]))

    def _opened(
        self,
        index: int,
        name: str,
        recent: DataSketch,
        highest: NDArray[np.float64],
        outcome: WindowVerdict | None,
        sequential: bool,
    ) -> DataDriftSignal:
        """The evidence window is the one this sketch joined: the events since the last
        windowed test, this batch included."""
        numeric = self.reference.numeric
        evidence: dict[str, Any] = {}
        if index < len(numeric.names):
            evidence |= numeric_summary(numeric, index, recent.numeric)
            evidence["levels"] = dict(zip(CHANNELS, self.levels[index].tolist(), strict=True))
            evidence["thresholds"] = dict(
                zip(CHANNELS, numeric.thresholds[index].tolist(), strict=True)
            )
        else:
            position = index - len(numeric.names)
            evidence |= categorical_summary(
                self.reference.categorical, position, recent.categorical
            )
        if outcome is not None:
            evidence["window_test"] = outcome.details[index] | {
                "fdr_level": outcome.level,
                "rejected": bool(outcome.rejected[index]),
            }
        if sequential:
            ratios = highest[index] / numeric.thresholds[index]
            channel = int(np.argmax(ratios))
            method = f"cusum_{CHANNELS[channel]}"
            statistic = float(min(highest[index, channel], numeric.caps[index, channel]))
            threshold = float(numeric.thresholds[index, channel])
        else:
            assert outcome is not None
            method = str(outcome.details[index]["method"])
            statistic = float(outcome.p_values[index])
            threshold = float(outcome.level)
        return DataDriftSignal(
            feature=name,
            transition="opened",
            method=method,
            statistic=statistic,
            threshold=threshold,
            severity=_severity(evidence, self.reference.settings),
            window_size=recent.events,
            window_start=recent.start,
            window_end=recent.end,
            evidence=evidence,
        )

    def _closed(self, index: int, name: str) -> DataDriftSignal:
        numeric = self.reference.numeric
        recent = self.window or self.last_window
        size = 0 if recent is None else recent.events
        if index < len(numeric.names):
            ratio = self.levels[index] / numeric.thresholds[index]
            channel = int(np.argmax(ratio))
            statistic = float(self.levels[index, channel])
            threshold = float(numeric.close_levels[index, channel])
            method = f"cusum_{CHANNELS[channel]}"
        else:
            statistic, threshold, method = 0.0, 0.0, "chi_square"
        return DataDriftSignal(
            feature=name,
            transition="closed",
            method=method,
            statistic=statistic,
            threshold=threshold,
            severity="warning",
            window_size=max(1, size),
            window_start=None if recent is None else recent.start,
            window_end=None if recent is None else recent.end,
        )


def _severity(
    evidence: dict[str, Any], settings: DataDriftSettings
) -> Literal["warning", "critical"]:
    """Critical when the drift is large by the usual yardsticks: a mean shift of twice
    the design shift (1 sd by default) or a PSI of 0.25 ("major shift")."""
    shift = abs(evidence.get("shift_sd", 0.0))
    window_psi = evidence.get("window_test", {}).get("psi", 0.0)
    if shift >= 2 * settings.mean_shift or window_psi >= 0.25:
        return "critical"
    return "warning"
