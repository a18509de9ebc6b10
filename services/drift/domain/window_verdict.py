"""One window's tests over every feature of a model version, with Benjamini-Hochberg
across them at the level the false-alarm budget leaves the windowed tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from services.drift.domain.data_sketch import DataSketch
from services.drift.domain.reference import CompiledReference
from services.drift.domain.windowed import benjamini_hochberg, chi_square, psi, shape_tests

MIN_VALUES: Final = 20
"""Fewer values than this in a window give no test (p = 1): too few for the asymptotics."""


@dataclass(frozen=True)
class WindowVerdict:
    """What a completed window said per feature (numeric first, then categorical)."""

    rejected: NDArray[np.bool_]
    p_values: NDArray[np.float64]
    details: list[dict[str, Any]]
    level: float
    size: int
    start: int | None
    end: int | None


def judge_window(reference: CompiledReference, window: DataSketch) -> WindowVerdict:
    """Shape tests (chi-square and binned KS, Bonferroni) per numeric feature, chi-square
    per categorical one, then BH across all of them."""
    p_values: list[float] = []
    details: list[dict[str, Any]] = []
    numeric = reference.numeric
    for index, bins in enumerate(numeric.bins):
        profile = numeric.profiles[index]
        counts = window.numeric.bins[index]
        if counts.sum() < MIN_VALUES:
            p_values.append(1.0)
            details.append({})
            continue
        tests = shape_tests(bins, counts, profile.count, profile.std)
        p_values.append(tests.p_value)
        details.append(
            {
                "psi": tests.psi,
                "chi_square": tests.chi_square,
                "chi_square_p": tests.chi_square_p,
                "ks": tests.ks,
                "ks_p": tests.ks_p,
                "wasserstein_sd": tests.wasserstein_sd,
                "p_value": tests.p_value,
            }
        )
    for index, categorical in enumerate(reference.categorical.profiles):
        counts = window.categorical.counts[index]
        expected = np.asarray([*categorical.frequencies.values(), 0.0])
        n = int(counts.sum())
        if n < MIN_VALUES:
            p_values.append(1.0)
            details.append({})
            continue
        statistic, p = chi_square(expected, counts, categorical.count)
        p_values.append(p)
        details.append({"psi": psi(expected, counts / n), "chi_square": statistic, "p_value": p})
    ps = np.asarray(p_values, dtype=np.float64)
    level = reference.settings.window_fdr_level(ps.size, window.events)
    return WindowVerdict(
        rejected=benjamini_hochberg(ps, level),
        p_values=ps,
        details=details,
        level=level,
        size=window.events,
        start=window.start,
        end=window.end,
    )
