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
