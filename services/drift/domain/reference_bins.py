"""The bins the windowed tests count in, and what the reference says about each edge."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shared.profile import NumericProfile


@dataclass(frozen=True)
class ReferenceBins:
    """Edges (bin i holds [edges[i-1], edges[i]), outer bins open) and the reference's
    P(x < edge) as an interval [cdf_low, cdf_high]: a point for continuous features, one
    grid step wide where tied quantiles (a discrete feature) leave it uncertain."""

    edges: NDArray[np.float64]
    cdf_low: NDArray[np.float64]
    cdf_high: NDArray[np.float64]

    @classmethod
    def from_profile(cls, profile: NumericProfile, bins: int) -> ReferenceBins:
        """Equal-probability bins from the score quantiles (levels i / bins), or the
        profile's decile histogram (exact shares) when it has no score quantiles."""
        grid = profile.score_quantiles
        if grid is None:
            edges = np.asarray(profile.bin_edges, dtype=np.float64)
            cdf = np.cumsum(profile.bin_fractions)[:-1]
            return cls(edges, cdf, cdf)
        values = np.asarray(grid, dtype=np.float64)
        steps = values.size + 1
        levels = np.arange(1, values.size + 1) / steps
        wanted = np.unique(np.round(np.arange(1, bins) * steps / bins).astype(int) - 1)
        edges = np.unique(values[wanted.clip(0, values.size - 1)])
        first = np.searchsorted(values, edges, side="left")
        last = np.searchsorted(values, edges, side="right") - 1
        tied = last > first
        high = levels[first]
        low = np.where(tied, np.where(first > 0, levels[first - 1], 0.0), high)
        return cls(edges, low, high)

    @property
    def expected_fractions(self) -> NDArray[np.float64]:
        """Reference share per bin, from the middle of each edge's interval."""
        middle = np.concatenate([[0.0], (self.cdf_low + self.cdf_high) / 2.0, [1.0]])
        return np.diff(middle)

    def counts(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        """Values per bin; NaN is left out (the caller counts it as missing)."""
        present = values[~np.isnan(values)]
        index = np.searchsorted(self.edges, present, side="right")
        return np.bincount(index, minlength=self.edges.size + 1).astype(np.int64)
