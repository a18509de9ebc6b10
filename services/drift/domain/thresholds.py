"""CUSUM thresholds from a target false-alarm rate, by Siegmund's approximation.

For a one-sided CUSUM S_t = max(0, S_{t-1} + x_t - k) on unit-variance normal x_t with
mean mu, Siegmund (1985) gives the average run length to a crossing of h as
ARL = (exp(-2 d b) + 2 d b - 1) / (2 d^2), with d = mu - k and b = h + 1.166 (the
overshoot correction). In control (mu = 0) the rate of false alarms per event is 1/ARL.
"""

from __future__ import annotations

import math
from typing import Final

from scipy.optimize import brentq

OVERSHOOT: Final = 1.166
"""Siegmund's correction: 2 * 0.583, the expected overshoot of a normal random walk."""


def siegmund_arl(drift: float, reference_value: float, threshold: float) -> float:
    """Average events to a crossing of `threshold` from 0 when increments are N(drift, 1)
    and the CUSUM subtracts `reference_value` (k) each event."""
    d = drift - reference_value
    b = threshold + OVERSHOOT
    if abs(d) < 1e-9:
        return b * b
    return (math.exp(-2.0 * d * b) + 2.0 * d * b - 1.0) / (2.0 * d * d)


def threshold_for_arl(reference_value: float, in_control_arl: float) -> float:
    """The h whose in-control ARL (mean 0, unit variance) is `in_control_arl`."""
    if reference_value <= 0.0:
        raise ValueError("the reference value k must be positive")
    if in_control_arl <= 1.0:
        raise ValueError("the in-control ARL must exceed one event")

    def excess(threshold: float) -> float:
        return math.log(siegmund_arl(0.0, reference_value, threshold)) - math.log(in_control_arl)

    high = 1.0
    while excess(high) < 0.0:
        high *= 2.0
    if excess(0.0) >= 0.0:
        return 0.0
    return float(brentq(excess, 0.0, high, xtol=1e-9))
