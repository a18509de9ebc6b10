"""What drift is measured against for one model version, as the registry describes it."""

from __future__ import annotations

from dataclasses import dataclass

from shared.profile import ReferenceProfile


@dataclass(frozen=True)
class VersionReference:
    model: str
    version: int
    task: str
    """"classification" or "regression"."""
    profile: ReferenceProfile
    offline_metrics: dict[str, float]
    """As the uploader reported them: compared with, never trusted to set a baseline."""

    @property
    def offline_accuracy(self) -> float | None:
        value = self.offline_metrics.get("accuracy")
        return value if value is not None and 0.0 <= value <= 1.0 else None
