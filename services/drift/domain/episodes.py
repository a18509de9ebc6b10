"""Alert episodes: one alert when a subject starts drifting, one record when it stops.

Detectors are evaluated again and again; an analyst wants to hear once. Per (kind,
subject) an episode opens when any of its detectors fires, escalates at most once (warning
to critical), and resolves only after every detector has stayed under its lower
threshold for `quiet_checks` evaluations in a row (hysteresis). After it resolves, the
subject is muted for `cooldown_seconds` of event time, so a statistic hovering at its
threshold cannot flap. Time is the stream's own (event time), so a replay decides the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

Severity = Literal["warning", "critical"]
DriftKind = Literal["data", "prediction", "concept", "performance"]
Transition = Literal["open", "escalated", "resolved"]
SEVERITY_RANK: Mapping[str, int] = {"warning": 1, "critical": 2}


@dataclass(frozen=True)
class Signal:
    """One detector's verdict on one subject at one evaluation.

    `firing` means the statistic is over its threshold; `quiet` that it is under the lower
    (clearing) threshold. Between the two the episode keeps its state.
    """

    kind: DriftKind
    subject: str
    method: str
    statistic: float
    threshold: float
    firing: bool
    quiet: bool
    severity: Severity = "warning"
    at: datetime | None = None
    window_size: int = 1
    window_start: datetime | None = None
    window_end: datetime | None = None
    reference: Mapping[str, Any] = field(default_factory=dict)
    current: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.subject)


@dataclass(frozen=True)
class EpisodeRules:
    quiet_checks: int = 3
    cooldown_seconds: float = 600.0


@dataclass(frozen=True)
class Episode:
    """Where one subject stands. `number` counts the episodes it has had."""

    number: int = 0
    open: bool = False
    severity: Severity = "warning"
    opened_at: datetime | None = None
    quiet_streak: int = 0
    muted_until: datetime | None = None
    firing_methods: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "open": self.open,
            "severity": self.severity,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "quiet_streak": self.quiet_streak,
            "muted_until": self.muted_until.isoformat() if self.muted_until else None,
            "firing_methods": list(self.firing_methods),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Episode:
        return cls(
            number=int(data["number"]),
            open=bool(data["open"]),
            severity="critical" if data["severity"] == "critical" else "warning",
            opened_at=_time(data.get("opened_at")),
            quiet_streak=int(data["quiet_streak"]),
            muted_until=_time(data.get("muted_until")),
            firing_methods=tuple(str(method) for method in data.get("firing_methods", ())),
        )


@dataclass(frozen=True)
class EpisodeChange:
    """A transition to publish: the signal that caused it and the episode after it."""

    transition: Transition
    signal: Signal
    episode: Episode

    def episode_id(self, scope: str) -> str:
        """Stable for the episode: the same stream replayed names it the same."""
        kind, subject = self.signal.key
        text = f"{scope}\x00{kind}\x00{subject}\x00{self.episode.number}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def alert_id(self, scope: str) -> str:
        return f"{self.episode_id(scope)}-{self.transition}"


def advance(
    episode: Episode, signals: Iterable[Signal], rules: EpisodeRules, now: datetime
) -> tuple[Episode, EpisodeChange | None]:
    """The episode after one evaluation of all of a subject's detectors."""
    evaluated = list(signals)
    if not evaluated:
        return episode, None
    firing = [signal for signal in evaluated if signal.firing]
    if not episode.open:
        return _maybe_open(episode, firing, now)
    if firing:
        strongest = max(
            firing, key=lambda signal: (SEVERITY_RANK[signal.severity], signal.statistic)
        )
        escalates = SEVERITY_RANK[strongest.severity] > SEVERITY_RANK[episode.severity]
        updated = replace(
            episode,
            quiet_streak=0,
            severity=strongest.severity if escalates else episode.severity,
            firing_methods=tuple(sorted({signal.method for signal in firing})),
        )
        return updated, EpisodeChange("escalated", strongest, updated) if escalates else None
    if all(signal.quiet for signal in evaluated):
        streak = episode.quiet_streak + 1
        if streak >= rules.quiet_checks:
            closed = replace(
                episode,
                open=False,
                quiet_streak=0,
                firing_methods=(),
                muted_until=_plus(now, rules.cooldown_seconds),
            )
            representative = max(
                evaluated, key=lambda signal: signal.statistic / _positive(signal.threshold)
            )
            return closed, EpisodeChange("resolved", representative, closed)
        return replace(episode, quiet_streak=streak), None
    return replace(episode, quiet_streak=0), None


def _maybe_open(
    episode: Episode, firing: list[Signal], now: datetime
) -> tuple[Episode, EpisodeChange | None]:
    if not firing or (episode.muted_until is not None and now < episode.muted_until):
        return episode, None
    strongest = max(firing, key=_strength)
    opened = Episode(
        number=episode.number + 1,
        open=True,
        severity=strongest.severity,
        opened_at=now,
        quiet_streak=0,
        muted_until=None,
        firing_methods=tuple(sorted({signal.method for signal in firing})),
    )
    return opened, EpisodeChange("open", strongest, opened)


def _strength(signal: Signal) -> tuple[int, float]:
    return (SEVERITY_RANK[signal.severity], signal.statistic)


def _relative(signal: Signal) -> float:
    return signal.statistic / _positive(signal.threshold)


def _plus(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)


def _positive(value: float) -> float:
    return value if value > 0 else 1.0


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None
