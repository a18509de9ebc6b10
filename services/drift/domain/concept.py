"""Concept drift from labels: Bernoulli CUSUMs on each serving variant's error stream, and
live accuracy against the version's offline metric.

The CUSUMs' baseline is the error rate observed over a burn-in of labels, never the
uploader's number (which may be optimistic); the offline metric is only compared with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from statistics import NormalDist
from typing import Any

import numpy as np

from services.drift.domain.concept_cusum import (
    BlockSummary,
    LatticeDesign,
    cusum_path,
    design,
    wilson_interval,
)
from services.drift.domain.episodes import Severity, Signal
from shared.contracts.labels import LabelledExample

EVIDENCE_Z = 1.959964
"""Error-rate intervals in the evidence are 95% Wilson intervals."""


@dataclass(frozen=True)
class ConceptSettings:
    """How the label detectors trade delay against false alarms.

    The false-alarm target is per label and stream, shared evenly (Bonferroni) by the
    two CUSUM channels: each gets an in-control run length of channels / rate labels.
    """

    burn_in: int = 1000
    """Labels whose error rate becomes the baseline before any CUSUM runs."""
    baseline_cap: int = 8000
    """The baseline is refitted on all labels so far at 2x, 4x ... burn_in up to this many."""
    baseline_z: float = 1.0
    """The in-control rate is the one-sided Wilson upper bound at this z of the observed
    baseline: an under-estimated baseline is the main cause of false alarms."""
    moderate_increase: float = 1.5
    """Error-rate ratio the sensitive channel is tuned to (e.g. 12% -> 18%)."""
    large_increase: float = 4.0
    """Error-rate ratio the fast channel is tuned to (e.g. 1% -> 4%, or a broken model)."""
    false_alarms_per_label: float = 1e-5
    """Target false alarms per label of one stream, both channels together."""
    accuracy_window: int = 500
    """Labels per tumbling window of live accuracy."""
    accuracy_margin: float = 0.02
    """How far under the offline accuracy live accuracy must be before it counts."""
    accuracy_false_alarms_per_window: float = 1e-3
    offline_metric: str = "accuracy"
    """The version's uploaded metric that live accuracy is compared with."""

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be {rule}"
            for name, broken, rule in (
                ("burn_in", self.burn_in < 1, "at least 1"),
                ("baseline_cap", self.baseline_cap < self.burn_in, "at least burn_in"),
                ("baseline_z", not 0 <= self.baseline_z < 10, "in [0, 10)"),
                ("moderate_increase", not self.moderate_increase > 1, "over 1"),
                ("large_increase", not self.large_increase > 1, "over 1"),
                (
                    "false_alarms_per_label",
                    not 0 < self.false_alarms_per_label < 0.1,
                    "in (0, 0.1)",
                ),
                ("accuracy_window", self.accuracy_window < 1, "at least 1"),
                ("accuracy_margin", not 0 <= self.accuracy_margin < 1, "in [0, 1)"),
                (
                    "accuracy_false_alarms_per_window",
                    not 0 < self.accuracy_false_alarms_per_window < 0.5,
                    "in (0, 0.5)",
                ),
            )
            if broken
        ]
        if problems:
            raise ValueError("concept settings: " + "; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConceptSettings:
        return cls(**data)


# -- sketches: what the sketcher makes of a batch of labels ---------------------------------


@dataclass(frozen=True)
class LabelSketch:
    """One variant's labels in one batch, in arrival order: '1' = wrong, '0' = right.

    Bounded by the batch; merging is concatenation, so it is a monoid.
    """

    bits: str = ""
    first_at: datetime | None = None
    last_at: datetime | None = None

    @property
    def labels(self) -> int:
        return len(self.bits)

    @property
    def errors(self) -> int:
        return self.bits.count("1")

    def then(self, later: LabelSketch) -> LabelSketch:
        return LabelSketch(
            bits=self.bits + later.bits,
            first_at=_earliest(self.first_at, later.first_at),
            last_at=_latest(self.last_at, later.last_at),
        )

    def error_array(self) -> np.ndarray:
        return np.asarray(np.frombuffer(self.bits.encode(), dtype=np.uint8) == ord("1"))

    def to_json(self) -> dict[str, Any]:
        return {"bits": self.bits, "first_at": _iso(self.first_at), "last_at": _iso(self.last_at)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabelSketch:
        bits = str(data.get("bits", ""))
        if bits.strip("01"):
            raise ValueError("label sketch bits must be '0' or '1'")
        return cls(bits, _time(data.get("first_at")), _time(data.get("last_at")))


StreamKey = tuple[str, int, str]
"""(model, version, variant): one error stream, one detector state."""


def sketch_labels(examples: Iterable[LabelledExample]) -> dict[StreamKey, LabelSketch]:
    """Per (model, version, variant), the error bits of a batch's usable labels, in order.

    Only ground truth counts (strength "label", `correct` known, no conflicting feedback):
    weak guesses and disputed labels would make the error stream noisier than the model.
    A label republished within the batch (same `label_id`) counts once.
    """
    seen: set[str] = set()
    bits: dict[StreamKey, list[str]] = {}
    times: dict[StreamKey, list[datetime]] = {}
    for example in examples:
        if example.strength != "label" or example.correct is None or example.conflicting:
            continue
        if example.label_id in seen:
            continue
        seen.add(example.label_id)
        key = (example.model, example.version, example.variant)
        bits.setdefault(key, []).append("0" if example.correct else "1")
        times.setdefault(key, []).append(example.labelled_at)
    return {
        key: LabelSketch("".join(row), min(times[key]), max(times[key]))
        for key, row in bits.items()
    }


# -- the detector state -----------------------------------------------------------------------


@dataclass
class CusumChannel:
    """One Bernoulli CUSUM, S_t = min(H, max(0, S_{t-1} + x_t)), and where it stands."""

    name: str
    increase: float
    design: LatticeDesign | None = None
    statistic: int = 0
    last_zero: int = -1
    """Label position where S was last 0: the change-point estimate once it fires."""
    last_zero_at: datetime | None = None
    last_crossing: int = -1
    run_labels: int = 0
    run_errors: int = 0
    """Labels and errors since `last_zero`: the current error rate the evidence shows."""
    fired: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_zero_at"] = _iso(self.last_zero_at)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CusumChannel:
        found = data.get("design")
        return cls(
            name=str(data["name"]),
            increase=float(data["increase"]),
            design=LatticeDesign(**found) if found else None,
            statistic=int(data["statistic"]),
            last_zero=int(data["last_zero"]),
            last_zero_at=_time(data.get("last_zero_at")),
            last_crossing=int(data["last_crossing"]),
            run_labels=int(data["run_labels"]),
            run_errors=int(data["run_errors"]),
            fired=bool(data["fired"]),
        )


@dataclass
class ConceptState:
    """Label detectors of one (model, version, variant): build with `start`, feed sketches
    to `apply`, keep `to_json()` in the changelog."""

    settings: ConceptSettings
    subject: str
    offline_accuracy: float | None = None
    labels: int = 0
    errors: int = 0
    baseline_labels: int = 0
    baseline_errors: int = 0
    next_refit: int = 0
    channels: list[CusumChannel] = field(default_factory=list)
    window_labels: int = 0
    window_errors: int = 0
    window_start_at: datetime | None = None

    @classmethod
    def start(
        cls, settings: ConceptSettings, subject: str, offline_accuracy: float | None = None
    ) -> ConceptState:
        """A fresh state; `offline_accuracy` is the version's reported metric (or None)."""
        usable = offline_accuracy
        if usable is not None and not (math.isfinite(usable) and 0.0 <= usable <= 1.0):
            usable = None  # an unusable upload metric disables the comparison, nothing else
        return cls(
            settings=settings,
            subject=subject,
            offline_accuracy=usable,
            next_refit=settings.burn_in,
            channels=[
                CusumChannel("bernoulli_cusum_moderate", settings.moderate_increase),
                CusumChannel("bernoulli_cusum_large", settings.large_increase),
            ],
        )

    @classmethod
    def for_version(
        cls, settings: ConceptSettings, subject: str, metrics: Mapping[str, float]
    ) -> ConceptState:
        """A fresh state for a registry version, from the metrics reported at upload."""
        return cls.start(settings, subject, metrics.get(settings.offline_metric))

    # -- feeding -------------------------------------------------------------------------------

    def apply(self, sketch: LabelSketch) -> list[Signal]:
        """Feed one batch's labels; one signal per channel evaluated (and per accuracy
        window closed), firing or not, so the episode layer can count quiet checks.

        The result does not depend on how labels were cut into batches: burn-in ends and
        refits happen at an exact label, wherever it falls in a batch.
        """
        errors = sketch.error_array()
        if errors.size == 0:
            return []
        signals = self._accuracy_windows(errors, sketch)
        crossed: dict[str, int | None] = {channel.name: None for channel in self.channels}
        first = self.labels
        monitored = False
        while errors.size:
            if self.channels[0].design is None:
                take = min(errors.size, self.settings.burn_in - self.baseline_labels)
                self.baseline_labels += take
                self.baseline_errors += int(errors[:take].sum())
                self._count(errors[:take])
                errors = errors[take:]
                if self.baseline_labels >= self.settings.burn_in:
                    self._design_channels()
                continue
            cut = self._refit_cut(errors)
            part = errors if cut is None else errors[:cut]
            for channel in self.channels:
                found = self._advance(channel, part, sketch)
                if crossed[channel.name] is None:
                    crossed[channel.name] = found
            self._count(part)
            monitored = True
            errors = errors[part.size :]
            if cut is not None:
                self.baseline_labels, self.baseline_errors = self.labels, self.errors
                self._design_channels()
        if monitored:
            signals += [
                self._cusum_signal(channel, crossed[channel.name], first, sketch)
                for channel in self.channels
            ]
        return signals

    def _count(self, errors: np.ndarray) -> None:
        self.labels += int(errors.size)
        self.errors += int(errors.sum())

    def _design_channels(self) -> None:
        in_control = baseline_rate(
            self.baseline_errors, self.baseline_labels, self.settings.baseline_z
        )
        run_length = len(self.channels) / self.settings.false_alarms_per_label
        for channel in self.channels:
            out = min(0.999, max(in_control * channel.increase, in_control + 1e-3))
            previous = channel.design
            channel.design = design(round(in_control, 6), round(out, 6), run_length)
            if previous is not None:  # keep the evidence, in nats, across a refit
                nats = channel.statistic * previous.nats_per_unit
                channel.statistic = min(
                    channel.design.threshold - 1, int(nats / channel.design.nats_per_unit)
                )
        self.next_refit = self.baseline_labels * 2

    def _refit_cut(self, errors: np.ndarray) -> int | None:
        """How many of these labels come before the next baseline refit, if one is due.

        The baseline is refitted on every label so far once their count has doubled, at
        the first label where the sensitive channel is back at zero (no pending evidence of
        a change), and never after any channel has fired: drifted labels must not become
        the baseline.
        """
        if self.next_refit > self.settings.baseline_cap or any(
            channel.fired for channel in self.channels
        ):
            return None
        first_due = self.next_refit - self.labels - 1  # index of the label that completes it
        if first_due >= errors.size:
            return None
        limit = errors.size
        for channel in self.channels:
            chosen = channel.design
            assert chosen is not None
            path = cusum_path(channel.statistic, chosen.increments(errors))
            crossing = np.flatnonzero(path >= chosen.threshold)
            if crossing.size:
                limit = min(limit, int(crossing[0]))
            if channel is self.channels[0]:
                zeros = np.flatnonzero(path[max(0, first_due) :] == 0) + max(0, first_due)
                if not zeros.size:
                    return None
                candidate = int(zeros[0])
        return candidate + 1 if candidate < limit else None

    def _advance(
        self, channel: CusumChannel, errors: np.ndarray, sketch: LabelSketch
    ) -> int | None:
        """Run one channel over labels; the position where it reached its threshold."""
        chosen = channel.design
        assert chosen is not None
        offset = self.labels
        increments = chosen.increments(errors)
        start = channel.statistic
        if BlockSummary.of(increments).highest_state(start) < chosen.threshold:
            path = cusum_path(start, increments)  # no clamp was reached: the plain CUSUM
        else:
            path = _clamped_path(start, increments, chosen.threshold)
        zeros = np.flatnonzero(path == 0)
        if zeros.size:
            after = int(zeros[-1]) + 1
            channel.last_zero = offset + after - 1
            channel.last_zero_at = sketch.first_at
            channel.run_labels, channel.run_errors = errors.size - after, int(errors[after:].sum())
        else:
            channel.run_labels += errors.size
            channel.run_errors += int(errors.sum())
        crossings = np.flatnonzero(path >= chosen.threshold)
        channel.statistic = int(path[-1])
        if not crossings.size:
            return None
        channel.fired = True
        channel.last_crossing = offset + int(crossings[-1])
        return offset + int(crossings[0])

    def _cusum_signal(
        self, channel: CusumChannel, crossed: int | None, first: int, sketch: LabelSketch
    ) -> Signal:
        """`crossed`: the label at which the statistic reached the threshold, if it did.

        Quiet means the statistic fell back to zero in this batch after any crossing: the
        evidence for a change is spent, so a false alarm's episode resolves and the next
        alarm needs a whole in-control run length again; under a lasting change the
        statistic stays at the threshold and the episode stays open.
        """
        restarted = channel.last_zero >= first and channel.last_zero > channel.last_crossing
        chosen = channel.design
        assert chosen is not None
        since, end = channel.last_zero + 1, self.labels - 1
        window_errors, window_labels = channel.run_errors, channel.run_labels
        z = EVIDENCE_Z
        severity: Severity = "critical" if channel.name.endswith("large") else "warning"
        return Signal(
            kind="concept",
            subject=self.subject,
            method=channel.name,
            statistic=round(channel.statistic * chosen.nats_per_unit, 6),
            threshold=round(chosen.threshold * chosen.nats_per_unit, 6),
            firing=crossed is not None,
            quiet=restarted,
            severity=severity,
            at=sketch.last_at,
            window_size=max(1, end - since + 1),
            window_start=channel.last_zero_at or sketch.first_at,
            window_end=sketch.last_at,
            reference={
                "error_rate": _share(self.baseline_errors, self.baseline_labels),
                "interval": wilson_interval(self.baseline_errors, self.baseline_labels, z),
                "labels": self.baseline_labels,
                "in_control_rate": chosen.in_control,
                "offline_accuracy": self.offline_accuracy,
            },
            current={
                "error_rate": _share(window_errors, window_labels),
                "interval": wilson_interval(window_errors, window_labels, z),
                "labels": window_labels,
            },
            evidence={
                "first_label": since,
                "crossed_at_label": crossed,
                "last_label": end,
                "tuned_for_error_rate": chosen.out_of_control,
                "in_control_run_length": round(chosen.run_length),
                "unit_nats": chosen.nats_per_unit,
            },
        )

    # -- live accuracy against the offline metric -----------------------------------------------

    def _accuracy_windows(self, errors: np.ndarray, sketch: LabelSketch) -> list[Signal]:
        signals = []
        size = self.settings.accuracy_window
        consumed = 0
        while consumed < errors.size:
            if self.window_labels == 0:
                self.window_start_at = sketch.first_at
            take = min(errors.size - consumed, size - self.window_labels)
            self.window_labels += take
            self.window_errors += int(errors[consumed : consumed + take].sum())
            consumed += take
            if self.window_labels >= size:
                signal = self._accuracy_signal(sketch, last_label=self.labels + consumed - 1)
                if signal is not None:
                    signals.append(signal)
                self.window_labels = self.window_errors = 0
        return signals

    def _accuracy_signal(self, sketch: LabelSketch, last_label: int) -> Signal | None:
        """Live accuracy of a closed window against the offline metric: firing when the
        whole Wilson interval lies under offline - margin; quiet once the point estimate
        is back over it. The offline number is only compared with, so a wrong one holds a
        single episode open and touches nothing else."""
        if self.offline_accuracy is None:
            return None
        z = NormalDist().inv_cdf(1 - self.settings.accuracy_false_alarms_per_window)
        correct = self.window_labels - self.window_errors
        low, high = wilson_interval(correct, self.window_labels, z)
        bar = self.offline_accuracy - self.settings.accuracy_margin
        accuracy = correct / self.window_labels
        return Signal(
            kind="performance",
            subject=self.subject,
            method="live_accuracy_wilson",
            statistic=round(bar - high, 6),
            threshold=0.0,
            firing=high < bar,
            quiet=accuracy >= bar,
            at=sketch.last_at,
            window_size=self.window_labels,
            window_start=self.window_start_at,
            window_end=sketch.last_at,
            reference={
                "offline_accuracy": self.offline_accuracy,
                "margin": self.settings.accuracy_margin,
            },
            current={"accuracy": accuracy, "interval": (low, high), "labels": self.window_labels},
            evidence={
                "z": z,
                "first_label": last_label - self.window_labels + 1,
                "last_label": last_label,
            },
        )

    # -- persistence -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_json(),
            "subject": self.subject,
            "offline_accuracy": self.offline_accuracy,
            "labels": self.labels,
            "errors": self.errors,
            "baseline_labels": self.baseline_labels,
            "baseline_errors": self.baseline_errors,
            "next_refit": self.next_refit,
            "channels": [channel.to_json() for channel in self.channels],
            "window_labels": self.window_labels,
            "window_errors": self.window_errors,
            "window_start_at": _iso(self.window_start_at),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConceptState:
        return cls(
            settings=ConceptSettings.from_json(data["settings"]),
            subject=str(data["subject"]),
            offline_accuracy=data.get("offline_accuracy"),
            labels=int(data["labels"]),
            errors=int(data["errors"]),
            baseline_labels=int(data["baseline_labels"]),
            baseline_errors=int(data["baseline_errors"]),
            next_refit=int(data["next_refit"]),
            channels=[CusumChannel.from_json(item) for item in data["channels"]],
            window_labels=int(data["window_labels"]),
            window_errors=int(data["window_errors"]),
            window_start_at=_time(data.get("window_start_at")),
        )


def baseline_rate(errors: int, labels: int, z: float) -> float:
    """The in-control error rate: the Wilson upper bound, never under the Jeffreys estimate
    (so a burn-in without a single error still gives a positive rate)."""
    upper = wilson_interval(errors, labels, z)[1] if z > 0 else 0.0
    return min(0.99, max(upper, (errors + 0.5) / (labels + 1)))


def _clamped_path(start: int, increments: np.ndarray, ceiling: int) -> np.ndarray:
    """S_t = min(ceiling, max(0, S_{t-1} + x_t)) step by step: reached only in the blocks
    where a channel fires, so the loop is rare."""
    path = np.empty(increments.size, dtype=np.int64)
    state = start
    for index, step in enumerate(increments.tolist()):
        state = min(ceiling, max(0, state + step))
        path[index] = state
    return path


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b
