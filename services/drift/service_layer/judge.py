"""The judge: sketches in, detector state advanced, alert episodes out.

One judge owns every sketch of a model (the sketch topic is keyed by model), so its
detectors see the model's whole stream. A sketch already applied (its source offsets at
or below the version's watermark for that source partition) changes nothing, so a
replayed sketch cannot count twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from services.drift.domain.episodes import Episode, EpisodeChange, EpisodeRules, Signal, advance
from services.drift.domain.history import History
from shared.contracts import DriftAlert, DriftSketch, DriftWindow, FeatureDrift

log = logging.getLogger(__name__)


class Monitor(Protocol):
    """All detectors of one model version."""

    def observe(self, sketch: DriftSketch) -> list[Signal]: ...
    def to_json(self) -> dict[str, Any]: ...


class MonitorFactory(Protocol):
    """Builds a version's monitor from its reference, or restores one from its state."""

    def new(self, reference: Any) -> Monitor: ...
    def restore(self, reference: Any, state: Mapping[str, Any]) -> Monitor: ...


class StateStore(Protocol):
    def get(self, partition: int, key: tuple[str, int]) -> dict[str, Any] | None: ...
    def put(self, partition: int, key: tuple[str, int], state: dict[str, Any]) -> None: ...


@dataclass
class VersionWatch:
    """What the judge keeps per model version, between batches."""

    monitor: Monitor
    episodes: dict[str, Episode] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    history: History = field(default_factory=History)

    def to_json(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor.to_json(),
            "episodes": {key: episode.to_json() for key, episode in self.episodes.items()},
            "applied": dict(self.applied),
            "history": self.history.to_json(),
        }


@dataclass(frozen=True)
class SketchOutcome:
    alerts: list[DriftAlert]
    applied: bool


class Judge:
    """Applies sketches to the watches of a batch; `finish` hands back their new states."""

    def __init__(
        self, factory: MonitorFactory, rules: EpisodeRules, *, now: Callable[[], datetime]
    ):
        self._factory = factory
        self._rules = rules
        self._now = now
        self._open: dict[tuple[int, tuple[str, int]], VersionWatch] = {}

    def begin(self) -> None:
        self._open = {}

    def apply(
        self, partition: int, sketch: DriftSketch, reference: Any, stored: Mapping[str, Any] | None
    ) -> SketchOutcome:
        key = (sketch.model, sketch.version)
        watch = self._open.get((partition, key))
        if watch is None:
            watch = self._watch(reference, stored)
            self._open[(partition, key)] = watch
        source = f"{sketch.source.topic}:{sketch.source.partition}"
        if watch.applied.get(source, -1) >= sketch.source.last_offset:
            return SketchOutcome(alerts=[], applied=False)
        watch.applied[source] = sketch.source.last_offset
        signals = watch.monitor.observe(sketch)
        watch.history.record(signals, at=sketch.last_at)
        return SketchOutcome(alerts=self._episodes(watch, sketch, signals), applied=True)

    def finish(self, store: StateStore) -> None:
        """Write every watch the batch touched to the state store (pending its commit)."""
        for (partition, key), watch in self._open.items():
            store.put(partition, key, watch.to_json())
        self._open = {}

    def _watch(self, reference: Any, stored: Mapping[str, Any] | None) -> VersionWatch:
        if stored is None:
            return VersionWatch(monitor=self._factory.new(reference))
        try:
            return self._restored(reference, stored)
        except (ValueError, KeyError, TypeError, IndexError) as error:
            # A state this release cannot read (forged, or from an incompatible release):
            # measuring again from scratch beats skipping the version's sketches forever.
            log.error("a stored drift state could not be restored; starting afresh: %r", error)
            return VersionWatch(monitor=self._factory.new(reference))

    def _restored(self, reference: Any, stored: Mapping[str, Any]) -> VersionWatch:
        return VersionWatch(
            monitor=self._factory.restore(reference, stored["monitor"]),
            episodes={
                key: Episode.from_json(value) for key, value in stored.get("episodes", {}).items()
            },
            applied={str(key): int(value) for key, value in stored.get("applied", {}).items()},
            history=History.from_json(stored.get("history", {})),
        )

    def _episodes(
        self, watch: VersionWatch, sketch: DriftSketch, signals: Sequence[Signal]
    ) -> list[DriftAlert]:
        by_subject: dict[tuple[str, str], list[Signal]] = {}
        for signal in signals:
            by_subject.setdefault(signal.key, []).append(signal)
        alerts = []
        scope = f"{sketch.model}/{sketch.version}"
        for (kind, subject), evaluated in by_subject.items():
            name = f"{kind}:{subject}"
            before = watch.episodes.get(name, Episode())
            after, change = advance(
                before, evaluated, self._rules, sketch.last_at, events=sketch.events
            )
            watch.episodes[name] = after
            if change is not None:
                alerts.append(self._alert(change, sketch, scope, evaluated))
        return alerts

    def _alert(
        self,
        change: EpisodeChange,
        sketch: DriftSketch,
        scope: str,
        evaluated: Sequence[Signal],
    ) -> DriftAlert:
        signal = change.signal
        variant = (
            signal.subject.split(":")[0] if signal.kind in ("concept", "performance") else None
        )
        feature = signal.subject if signal.kind == "data" else None
        return DriftAlert(
            alert_id=change.alert_id(scope),
            episode_id=change.episode_id(scope),
            status=change.transition,
            model=sketch.model,
            version=sketch.version,
            variant=variant if variant in ("production", "canary", "shadow") else None,
            kind=signal.kind,
            feature=feature,
            method=signal.method,
            statistic=signal.statistic,
            threshold=signal.threshold,
            severity=change.episode.severity,
            window=DriftWindow(
                size=max(1, signal.window_size),
                start=signal.window_start or sketch.first_at,
                end=signal.window_end or sketch.last_at,
            ),
            reference=dict(signal.reference),
            current=dict(signal.current),
            top_features=[
                FeatureDrift.model_validate(entry)
                for entry in signal.evidence.get("top_features", [])
            ],
            evidence={
                **{k: v for k, v in signal.evidence.items() if k != "top_features"},
                "methods": {
                    other.method: {
                        "statistic": other.statistic,
                        "threshold": other.threshold,
                        "firing": other.firing,
                    }
                    for other in evaluated
                },
            },
            opened_at=change.episode.opened_at,
            detected_at=self._now(),
        )
