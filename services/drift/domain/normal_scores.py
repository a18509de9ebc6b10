"""Normal scores: raw values mapped to z = Phi^-1(F_ref(x)), N(0, 1) under the reference
whatever the feature's distribution, so thresholds set for N(0, 1) hold on real data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from shared.profile import NumericProfile

FALLBACK_CLAMP: Final = 4.0
"""|z| bound for profiles without quantiles (mean/std only): a heavy tail cannot make one
value a whole alarm, and a constant reference feature still reads any change as +-4."""


@dataclass(frozen=True)
class NormalScorer:
    """Maps one feature's values to normal scores by its reference quantile grid.

    Between grid points F_ref is interpolated linearly; beyond the outer ones z is
    clamped (the grid says nothing about the tail, and clamping only lowers the variance).
    Tied grid values (discrete features) take their mid-rank, (F(x-) + F(x)) / 2, and the
    scores are centred on their reference mean: without centring a skewed discrete
    feature would carry a bias in z that a CUSUM accumulates. Mid-rank scores have
    variance below 1, so thresholds for N(0, 1) are conservative for them.
    """

    knots: NDArray[np.float64]
    scores: NDArray[np.float64]
    weights: NDArray[np.int64]
    fallback_mean: float
    fallback_std: float

    @classmethod
    def from_profile(cls, profile: NumericProfile) -> NormalScorer:
        grid = profile.score_quantiles
        if grid is None:
            empty = np.empty(0, dtype=np.float64)
            return cls(empty, empty, np.empty(0, dtype=np.int64), profile.mean, profile.std)
        values = np.asarray(grid, dtype=np.float64)
        levels = np.arange(1, values.size + 1) / (values.size + 1)
        knots, first, counts = np.unique(values, return_index=True, return_counts=True)
        mid_levels = levels[first] + (counts - 1) / (2.0 * (values.size + 1))
        scores = ndtri(mid_levels)
        # the reference distribution of z, as the grid sees it: each grid value one share
        centre = float(np.sum(scores * counts) / values.size)
        return cls(knots, scores - centre, counts, profile.mean, profile.std)

    @property
    def tied(self) -> bool:
        """Some grid values repeat: the feature has atoms (discrete or zero-inflated)."""
        return bool(np.any(self.weights > 1))

    def grid_scores(self) -> NDArray[np.float64]:
        """The scores of the grid's values, one per grid point: z as the reference has it."""
        return np.repeat(self.scores, self.weights)

    def __call__(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Scores of `values` (any shape); NaN stays NaN, +-inf takes the outer score."""
        if self.knots.size == 0:
            return self._fallback(values)
        if self.knots.size == 1:
            return np.where(
                np.isnan(values), np.nan, np.sign(values - self.knots[0]) * FALLBACK_CLAMP
            )
        return np.interp(values, self.knots, self.scores)

    def _fallback(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.fallback_std > 0.0:
                z = (values - self.fallback_mean) / self.fallback_std
            else:
                z = np.sign(values - self.fallback_mean) * FALLBACK_CLAMP
        return np.clip(z, -FALLBACK_CLAMP, FALLBACK_CLAMP)
