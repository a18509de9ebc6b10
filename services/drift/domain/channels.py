"""The CUSUM channels of a numeric feature, as increments computed from normal scores."""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

CHANNELS: Final = ("mean_up", "mean_down", "spread_up")
SPREAD_CLAMP: Final = 4.0


def spread_scores(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """v = Phi^-1(2 Phi(|z|) - 1): N(0, 1) when z is, and larger when z spreads out, so a
    variance increase becomes a mean shift that a normal CUSUM with Siegmund's threshold
    detects (|z| is half normal, 2 Phi(|z|) - 1 uniform). Clamped at +-4 (|z| = 0 would
    give -inf); the clamp moves v's mean by under 1e-5."""
    with np.errstate(invalid="ignore"):
        spread: NDArray[np.float64] = ndtri(2.0 * ndtr(np.abs(z)) - 1.0)
    return np.clip(spread, -SPREAD_CLAMP, SPREAD_CLAMP)


def channel_increments(
    z: NDArray[np.float64],
    reference_values: NDArray[np.float64],
    spread_centres: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Increments (events, features, 3) for mean up, mean down and spread; a missing value
    (NaN) adds 0, which leaves every level where it was."""
    spread = spread_scores(z) - spread_centres
    stacked = np.stack([z, -z, spread], axis=-1) - reference_values
    return np.where(np.isnan(stacked), 0.0, stacked)
