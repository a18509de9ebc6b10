"""A Bernoulli CUSUM on an integer lattice: block summaries that compose, and a threshold
computed exactly from a target in-control run length (Brook & Evans Markov chain)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.linalg import solve_banded
from scipy.sparse import csc_matrix
from scipy.sparse.linalg import spsolve

NOTHING = -(2**62)
"""Minus infinity for integer statistics (Python ints do not overflow)."""
MAX_LATTICE_DENOMINATOR = 10
"""Finest correct-label step tried; the error step is then within 2% of the true ratio."""
WIDE_BAND = 64
"""Above this band width the run-length system is solved as a sparse matrix."""


@dataclass(frozen=True)
class BlockSummary:
    """Four numbers that stand for a run of CUSUM increments (see drift_design.md).

    total D = sum x; suffix R = D_n - min_{1<=s<=n} D_s; prefix P = max_t D_t;
    peak M = max_t (D_t - min_{s<=t} D_s). The empty block is the identity (its suffix
    and prefix are "minus infinity").
    """

    total: int = 0
    suffix: int = NOTHING
    prefix: int = NOTHING
    peak: int = 0

    @classmethod
    def of(cls, increments: np.ndarray) -> BlockSummary:
        if increments.size == 0:
            return cls()
        partial = np.cumsum(increments, dtype=np.int64)
        running_min = np.minimum.accumulate(partial)
        return cls(
            total=int(partial[-1]),
            suffix=int(partial[-1] - running_min[-1]),
            prefix=int(partial.max()),
            peak=int(max(0, (partial - np.minimum(running_min, 0)).max())),
        )

    def then(self, later: BlockSummary) -> BlockSummary:
        """This block followed by `later`: the summary of their concatenation."""
        return BlockSummary(
            total=self.total + later.total,
            suffix=max(self.suffix + later.total, later.suffix),
            prefix=max(self.prefix, self.total + later.prefix),
            peak=max(self.peak, later.peak, self.suffix + later.prefix),
        )

    def end_state(self, start: int) -> int:
        """S after the block, from S = `start` before it."""
        return max(start + self.total, self.suffix)

    def highest_state(self, start: int) -> int:
        """max_t S_t within the block, from S = `start` before it."""
        return max(start + self.prefix, self.peak)


def cusum_path(start: int, increments: np.ndarray) -> np.ndarray:
    """S_t for every step of a block: S_t = D_t - min(-start, min_{s<=t} D_s)."""
    partial = np.cumsum(increments, dtype=np.int64)
    return partial - np.minimum(np.minimum.accumulate(partial), -start)


@dataclass(frozen=True)
class LatticeDesign:
    """A Bernoulli CUSUM for an error rate `in_control` against `out_of_control`.

    The log-likelihood-ratio increments ln(p1/p0) (error) and ln((1-p1)/(1-p0)) (correct)
    are scaled to integers `error_step` and -`correct_step` (ratio within 2%), so the
    statistic is an integer, block summaries are exact, and the in-control run length of
    the detector actually run is computed exactly, not approximated.
    """

    in_control: float
    out_of_control: float
    error_step: int
    correct_step: int
    nats_per_unit: float
    threshold: int
    run_length: float

    def increments(self, errors: np.ndarray) -> np.ndarray:
        return np.where(errors, self.error_step, -self.correct_step).astype(np.int64)


def lattice_steps(in_control: float, out_of_control: float) -> tuple[int, int, float]:
    """(error step, correct step, nats per unit) of the integer walk."""
    up = math.log(out_of_control / in_control)
    down = -math.log((1 - out_of_control) / (1 - in_control))
    ratio = up / down
    correct_step, error_step = 1, max(1, round(ratio))
    for denominator in range(1, MAX_LATTICE_DENOMINATOR + 1):
        correct_step, error_step = denominator, max(1, round(ratio * denominator))
        if abs(error_step / correct_step - ratio) <= 0.02 * ratio:
            break
    return error_step, correct_step, down / correct_step


def in_control_run_length(
    error_step: int, correct_step: int, threshold: int, rate: float, *, sparse: bool | None = None
) -> float:
    """Expected labels to a (false) alarm from S = 0 when errors arrive at `rate`.

    States 0..threshold-1; L(s) = 1 + rate L(s + up) + (1 - rate) L(max(0, s - down)).
    Three non-zeros a row: a banded solve while the band is narrow, a sparse one when a
    tiny error rate makes the error step (the upper band) wide.
    """
    size, up, down = threshold, error_step, correct_step
    states = np.arange(size)
    rises = states + up
    inside = rises < size
    falls = np.maximum(0, states - down)
    if sparse if sparse is not None else up + down > WIDE_BAND:
        matrix = csc_matrix(
            (
                np.concatenate(
                    [np.ones(size), np.full(int(inside.sum()), -rate), np.full(size, rate - 1)]
                ),
                (
                    np.concatenate([states, states[inside], states]),
                    np.concatenate([states, rises[inside], falls]),
                ),
            ),
            shape=(size, size),
        )
        return float(spsolve(matrix, np.ones(size))[0])
    bands = np.zeros((up + down + 1, size))
    bands[up, :] = 1.0
    bands[up + states[inside] - rises[inside], rises[inside]] -= rate
    np.subtract.at(bands, (up + states - falls, falls), 1 - rate)
    return float(solve_banded((down, up), bands, np.ones(size), check_finite=False)[0])


@lru_cache(maxsize=4096)
def design(in_control: float, out_of_control: float, run_length: float) -> LatticeDesign:
    """The lattice CUSUM whose in-control run length first reaches `run_length`."""
    if not 0.0 < in_control < out_of_control < 1.0 or not run_length > 1.0:
        raise ValueError(
            f"a Bernoulli CUSUM needs 0 < in-control rate ({in_control}) < out-of-control "
            f"rate ({out_of_control}) < 1 and a run length over 1 ({run_length})"
        )
    error_step, correct_step, unit = lattice_steps(in_control, out_of_control)

    def log_length(threshold: int) -> float:
        found = in_control_run_length(error_step, correct_step, threshold, in_control)
        return math.log(found)

    # Wald: a CUSUM with threshold h nats has an in-control run length of at least e^h,
    # so `ceiling` suffices. Log run length grows almost linearly with the threshold:
    # secant steps get close, then unit steps find the smallest threshold that suffices.
    goal = math.log(run_length)
    ceiling = max(2, math.ceil(goal / unit))
    previous, previous_value = ceiling, log_length(ceiling)
    current = max(1, round(ceiling * 0.6))
    current_value = log_length(current)
    for _ in range(8):
        if current_value == previous_value:
            break
        slope = (current_value - previous_value) / (current - previous)
        step = min(ceiling, max(1, round(current + (goal - current_value) / slope)))
        if step == current:
            break
        previous, previous_value = current, current_value
        current, current_value = step, log_length(step)
    while current_value < goal and current < ceiling:
        current += 1
        current_value = log_length(current)
    while current > 1:
        lower = log_length(current - 1)
        if lower < goal:
            break
        current, current_value = current - 1, lower
    high, high_value = current, current_value
    return LatticeDesign(
        in_control=in_control,
        out_of_control=out_of_control,
        error_step=error_step,
        correct_step=correct_step,
        nats_per_unit=unit,
        threshold=high,
        run_length=math.exp(high_value),
    )


def wilson_interval(successes: int, trials: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) with no trials."""
    if trials <= 0:
        return 0.0, 1.0
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half / denominator), min(1.0, centre + half / denominator)
