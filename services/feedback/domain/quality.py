"""Live quality of a model version and variant, from the labels that came back.

Accuracy carries a Wilson score interval: with a few dozen labels a plain proportion
claims far more certainty than it has, and the interval stays inside [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None without trials.

    >>> low, high = wilson_interval(8, 10)
    >>> round(low, 3), round(high, 3)
    (0.49, 0.943)
    """
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes {successes} must lie within 0..{trials}")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(sorted_values: Sequence[float], share: float) -> float | None:
    """The value below which `share` of the values lie (linear between ranks)."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * share
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] * (1 - fraction) + sorted_values[high] * fraction


@dataclass(frozen=True)
class Counts:
    """What the store counted for one (model, version, variant) in the window."""

    model: str
    version: int
    variant: str
    predictions: int
    labelled: int
    judged: int
    correct: int
    absolute_error_sum: float
    valued: int
    conflicts: int
    ratings_up: int
    ratings_down: int


@dataclass(frozen=True)
class VariantQuality:
    """Live quality of one version as one variant served it."""

    model: str
    version: int
    variant: str
    predictions: int
    labelled: int
    coverage: float | None
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None
    mae: float | None
    delay_p50_seconds: float | None
    delay_p95_seconds: float | None
    rating_ratio: float | None
    conflicts: int


def summarise(counts: Counts, delays: Sequence[float]) -> VariantQuality:
    """Accuracy (or MAE), its interval, coverage, delays and ratings of one variant."""
    interval = wilson_interval(counts.correct, counts.judged)
    ordered = sorted(delays)
    ratings = counts.ratings_up + counts.ratings_down
    return VariantQuality(
        model=counts.model,
        version=counts.version,
        variant=counts.variant,
        predictions=counts.predictions,
        labelled=counts.labelled,
        coverage=counts.labelled / counts.predictions if counts.predictions else None,
        accuracy=counts.correct / counts.judged if counts.judged else None,
        accuracy_low=interval[0] if interval else None,
        accuracy_high=interval[1] if interval else None,
        mae=counts.absolute_error_sum / counts.valued if counts.valued else None,
        delay_p50_seconds=percentile(ordered, 0.5),
        delay_p95_seconds=percentile(ordered, 0.95),
        rating_ratio=counts.ratings_up / ratings if ratings else None,
        conflicts=counts.conflicts,
    )
