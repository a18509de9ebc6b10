"""Windowed tests from counts: PSI, chi-square, a binned KS, Wasserstein-1, and
Benjamini-Hochberg across the features of one window.

The reference is itself a sample of n_ref rows, so each test compares the window with it
as a two-sample test would: the effective size is n n_ref / (n + n_ref).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import chdtrc, kolmogorov

from services.drift.domain.reference_bins import ReferenceBins

PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class ShapeTests:
    """One numeric feature's window against its reference bins."""

    psi: float
    chi_square: float
    chi_square_p: float
    ks: float
    ks_p: float
    wasserstein_sd: float

    @property
    def p_value(self) -> float:
        """Bonferroni over the two tests with p-values."""
        return min(1.0, 2.0 * min(self.chi_square_p, self.ks_p))


def effective_size(window: int, reference: int) -> float:
    return window * reference / (window + reference) if reference > 0 else float(window)


def psi(expected: NDArray[np.float64], observed: NDArray[np.float64]) -> float:
    """Population stability index on shares, with PSI_FLOOR for empty bins."""
    e = np.maximum(expected, PSI_FLOOR)
    o = np.maximum(observed, PSI_FLOOR)
    return float(np.sum((o - e) * np.log(o / e)))


def chi_square(
    expected: NDArray[np.float64], counts: NDArray[np.int64], reference_count: int
) -> tuple[float, float]:
    """Pearson's statistic scaled to the two-sample variance, and its p-value; bins the
    reference never saw count against a share of half a reference row."""
    n = int(counts.sum())
    if n == 0:
        return 0.0, 1.0
    floor = 0.5 / reference_count if reference_count > 0 else PSI_FLOOR
    shares = np.maximum(expected, floor)
    shares = shares / shares.sum()
    raw = float(np.sum((counts - n * shares) ** 2 / (n * shares)))
    statistic = raw * effective_size(n, reference_count) / n
    dof = max(1, counts.size - 1)
    return statistic, float(chdtrc(dof, statistic))


def binned_ks(
    bins: ReferenceBins, counts: NDArray[np.int64], reference_count: int
) -> tuple[float, float]:
    """Largest distance of the window's CDF at the edges from the reference's interval
    there. Evaluating only at edges can only lower the statistic, so the p-value from
    the Kolmogorov distribution is conservative. The p-value uses Stephens' finite-size
    scaling D (sqrt(n) + 0.12 + 0.11 / sqrt(n)) of the limiting distribution: accurate in
    the tail and a ufunc call, where scipy's exact kstwo costs a millisecond."""
    n = int(counts.sum())
    if n == 0 or bins.edges.size == 0:
        return 0.0, 1.0
    cdf = np.cumsum(counts)[:-1] / n
    distance = np.maximum(bins.cdf_low - cdf, cdf - bins.cdf_high)
    statistic = float(max(0.0, distance.max()))
    root = np.sqrt(effective_size(n, reference_count))
    return statistic, float(kolmogorov(statistic * (root + 0.12 + 0.11 / root)))


def wasserstein_between_edges(
    bins: ReferenceBins, counts: NDArray[np.int64], reference_std: float
) -> float:
    """W1 = integral of |F_window - F_ref| between the outer edges (trapezoids), in
    reference standard deviations; the open outer bins are left out."""
    n = int(counts.sum())
    if n == 0 or bins.edges.size < 2 or reference_std <= 0.0:
        return 0.0
    cdf = np.cumsum(counts)[:-1] / n
    reference = (bins.cdf_low + bins.cdf_high) / 2.0
    gap = np.abs(cdf - reference)
    area = np.sum((gap[1:] + gap[:-1]) / 2.0 * np.diff(bins.edges))
    return float(area / reference_std)


def shape_tests(
    bins: ReferenceBins, counts: NDArray[np.int64], reference_count: int, reference_std: float
) -> ShapeTests:
    n = max(1, int(counts.sum()))
    expected = bins.expected_fractions
    statistic, p_chi = chi_square(expected, counts, reference_count)
    ks, p_ks = binned_ks(bins, counts, reference_count)
    return ShapeTests(
        psi=psi(expected, counts / n),
        chi_square=statistic,
        chi_square_p=p_chi,
        ks=ks,
        ks_p=p_ks,
        wasserstein_sd=wasserstein_between_edges(bins, counts, reference_std),
    )


def benjamini_hochberg(p_values: NDArray[np.float64], level: float) -> NDArray[np.bool_]:
    """Which hypotheses BH rejects at false discovery rate `level`."""
    m = p_values.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p_values)
    passed = p_values[order] <= level * np.arange(1, m + 1) / m
    rejected = np.zeros(m, dtype=bool)
    if passed.any():
        last = int(np.nonzero(passed)[0].max())
        rejected[order[: last + 1]] = True
    return rejected
