"""Reference against current summaries for an alert's evidence."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from services.drift.domain.data_sketch import CategoricalSketch, NumericSketch
from services.drift.domain.reference import CategoricalReference, NumericReference
from shared.profile import QUANTILE_LEVELS

_SHOWN = ("p05", "p25", "p50", "p75", "p95")


def numeric_summary(
    reference: NumericReference, index: int, sketch: NumericSketch
) -> dict[str, Any]:
    """Mean, sd and quantiles of reference and current; the shift in reference sd (the
    mean normal score) and the current spread in reference sd (the sd of the scores)."""
    profile = reference.profiles[index]
    n = int(sketch.count[index])
    current: dict[str, Any] = {"count": n, "missing": int(sketch.missing[index])}
    shift = 0.0
    if n > 0:
        mean = float(sketch.sum_x[index]) / n
        variance = max(0.0, float(sketch.sum_x2[index]) / n - mean * mean)
        shift = float(sketch.sum_z[index]) / n
        z_variance = max(0.0, float(sketch.sum_z2[index]) / n - shift * shift)
        current |= {
            "mean": _finite(mean),
            "std": _finite(math.sqrt(variance)),
            "quantiles": _quantiles_from_bins(reference, index, sketch),
            "score_sd": math.sqrt(z_variance),
        }
    return {
        "reference": {
            "count": profile.count,
            "mean": profile.mean,
            "std": profile.std,
            "quantiles": {key: profile.quantiles[key] for key in _SHOWN},
        },
        "current": current,
        "shift_sd": shift,
    }


def categorical_summary(
    reference: CategoricalReference, index: int, sketch: CategoricalSketch
) -> dict[str, Any]:
    """Reference and current shares per category, unseen share and the top unseen names."""
    profile = reference.profiles[index]
    counts = sketch.counts[index]
    n = int(counts.sum())
    shares = (counts / n).tolist() if n else [0.0] * counts.size
    return {
        "reference": {"count": profile.count, "frequencies": dict(profile.frequencies)},
        "current": {
            "count": n,
            "missing": int(sketch.missing[index]),
            "frequencies": dict(zip(reference.categories[index], shares[:-1], strict=True)),
            "unseen_share": shares[-1],
            "top_unseen": dict(sketch.unseen[index]),
        },
    }


def _quantiles_from_bins(
    reference: NumericReference, index: int, sketch: NumericSketch
) -> dict[str, float]:
    """Current quantiles read off the bin counts (linear between edges; clamped to the
    outer edges, where the bins are open)."""
    bins = reference.bins[index]
    counts = sketch.bins[index]
    n = counts.sum()
    if n == 0 or bins.edges.size == 0:
        return {}
    cdf = np.cumsum(counts)[:-1] / n
    levels = [QUANTILE_LEVELS[key] for key in _SHOWN]
    values = np.interp(levels, cdf, bins.edges) if bins.edges.size > 1 else bins.edges[[0] * 5]
    return {key: float(value) for key, value in zip(_SHOWN, values, strict=True)}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
