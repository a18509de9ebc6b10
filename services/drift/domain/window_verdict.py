"""One window's tests over every feature of a model version, with Benjamini-Hochberg
across them at the level the false-alarm budget leaves the windowed tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from services.drift.domain.data_sketch import DataSketch
from services.drift.domain.reference import CompiledReference
from services.drift.domain.windowed import (
    benjamini_hochberg,
    chi_square,
    missing_increase,
    psi,
    shape_tests,
)
from shared.profile import CategoricalProfile, NumericProfile

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
    """Per numeric feature chi-square, binned KS and a rise in missing values; per
    categorical one chi-square and missing values; Bonferroni within a feature, then BH
    across the features. `details[i]["method"]` names the test with the smallest p."""
    p_values: list[float] = []
    details: list[dict[str, Any]] = []
    numeric = reference.numeric
    for index, bins in enumerate(numeric.bins):
        profile = numeric.profiles[index]
        counts = window.numeric.bins[index]
        missing = _missing(int(window.numeric.missing[index]), window.events, profile)
        if counts.sum() < MIN_VALUES:
            detail = missing
        else:
            tests = shape_tests(bins, counts, profile.count, profile.std)
            detail = missing | {
                "psi": tests.psi,
                "chi_square": tests.chi_square,
                "window_chi_square_p": tests.chi_square_p,
                "ks": tests.ks,
                "window_ks_p": tests.ks_p,
                "wasserstein_sd": tests.wasserstein_sd,
            }
        p_values.append(_combined(detail))
        details.append(detail)
    for index, categorical in enumerate(reference.categorical.profiles):
        counts = window.categorical.counts[index]
        missing = _missing(int(window.categorical.missing[index]), window.events, categorical)
        expected = np.asarray([*categorical.frequencies.values(), 0.0])
        n = int(counts.sum())
        detail = missing
        if n >= MIN_VALUES:
            statistic, p = chi_square(expected, counts, categorical.count)
            detail = missing | {
                "psi": psi(expected, counts / n),
                "chi_square": statistic,
                "chi_square_p": p,
            }
        p_values.append(_combined(detail))
        details.append(detail)
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


def _missing(
    missing: int, events: int, profile: NumericProfile | CategoricalProfile
) -> dict[str, Any]:
    share, p = missing_increase(missing, events, profile.missing, profile.count + profile.missing)
    return {
        "missing_share": share,
        "reference_missing_share": profile.missing / max(1, profile.count + profile.missing),
        "missing_rate_p": p,
    }


def _combined(detail: dict[str, Any]) -> float:
    """Bonferroni over the feature's tests (keys ending in _p); names the smallest."""
    tests = {key[: -len("_p")]: value for key, value in detail.items() if key.endswith("_p")}
    method = min(tests, key=lambda key: tests[key])
    detail["method"] = method
    detail["p_value"] = min(1.0, len(tests) * tests[method])
    return float(detail["p_value"])
