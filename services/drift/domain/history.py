"""Each detector's statistic over time, in bounded space, for the report's plots.

When a series is full, every other point is dropped: the series keeps covering the
whole life of the version at half the resolution, rather than only its recent past.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.drift.domain.episodes import Signal

POINTS_PER_SERIES = 64
LARGEST = 1e12


@dataclass
class History:
    """series name -> [(event time as epoch seconds, statistic, threshold)]"""

    series: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    capacity: int = POINTS_PER_SERIES

    def record(self, signals: Iterable[Signal], *, at: datetime) -> None:
        moment = at.timestamp()
        for signal in signals:
            name = f"{signal.kind}:{signal.subject}:{signal.method}"
            points = self.series.setdefault(name, [])
            points.append((moment, _finite(signal.statistic), _finite(signal.threshold)))
            if len(points) > self.capacity:
                del points[1::2]
            if signal.reference or signal.current:
                self.latest[f"{signal.kind}:{signal.subject}"] = {
                    "method": signal.method,
                    "reference": dict(signal.reference),
                    "current": dict(signal.current),
                }

    def to_json(self) -> dict[str, Any]:
        return {
            "series": {
                name: [list(point) for point in points] for name, points in self.series.items()
            },
            "latest": self.latest,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> History:
        return cls(
            series={
                str(name): [(float(p[0]), float(p[1]), float(p[2])) for p in points]
                for name, points in dict(data.get("series", {})).items()
            },
            latest={str(name): dict(value) for name, value in dict(data.get("latest", {})).items()},
        )


def _finite(value: float) -> float:
    """JSON has no NaN or infinity: NaN becomes 0, infinities the largest plotted value."""
    if value != value:
        return 0.0
    return max(-LARGEST, min(LARGEST, float(value)))
