"""One-sided CUSUM levels S_t = min(cap, max(0, S_{t-1} + x_t)) as block summaries.

A block of increments is summarised per column by five numbers, so a sketcher can
summarise a micro-batch and a judge can advance its levels without the events:
`total` (sum of x), `floor_end` and `ceiling_end` (the end level started at 0 and at the
cap: the block maps any start S to clip(S + total, floor_end, ceiling_end)), `rise`
(max prefix sum, 0 included) and `peak` (highest level started at 0, exact below the cap).
The level crosses h inside the block iff max(S + rise, peak) >= h, for any h <= cap:
below the cap the capped and the uncapped walks coincide. End levels of the doubly
reflected walk come from the explicit Skorokhod map on [0, cap] of Kruk, Lehoczky,
Ramanan and Shreve (2007), vectorised with cumulative sums and minima.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


@dataclass(frozen=True)
class BlockSummary:
    """What a block of increments does to a CUSUM level, per column."""

    total: Array
    floor_end: Array
    ceiling_end: Array
    rise: Array
    peak: Array

    @classmethod
    def empty(cls, shape: tuple[int, ...], cap: Array) -> BlockSummary:
        zeros = np.zeros(shape)
        return cls(zeros, zeros, np.broadcast_to(cap, shape).copy(), zeros, zeros)

    def then(self, later: BlockSummary) -> BlockSummary:
        """This block followed by `later` (associative, not commutative)."""
        return BlockSummary(
            total=self.total + later.total,
            floor_end=later.end_levels(self.floor_end),
            ceiling_end=later.end_levels(self.ceiling_end),
            rise=np.maximum(self.rise, self.total + later.rise),
            peak=np.maximum(np.maximum(self.peak, later.peak), self.floor_end + later.rise),
        )

    def end_levels(self, start: Array) -> Array:
        """Levels after the block from levels `start` in [0, cap]."""
        return np.clip(start + self.total, self.floor_end, self.ceiling_end)

    def highest_levels(self, start: Array) -> Array:
        """Highest level reached in the block from `start`; exact while below the cap."""
        return np.maximum(start + self.rise, self.peak)

    def to_json(self) -> dict[str, list[float]]:
        return {name: getattr(self, name).ravel().tolist() for name in _FIELDS}

    @classmethod
    def from_json(cls, data: dict[str, list[float]], shape: tuple[int, ...]) -> BlockSummary:
        arrays = [np.asarray(data[name], dtype=np.float64).reshape(shape) for name in _FIELDS]
        return cls(*arrays)


_FIELDS = ("total", "floor_end", "ceiling_end", "rise", "peak")


def summarise_block(increments: Array, cap: Array) -> BlockSummary:
    """Summary of increments shaped (events, *columns); `cap` broadcasts over columns."""
    columns = increments.shape[1:]
    cap = np.broadcast_to(np.asarray(cap, dtype=np.float64), columns)
    if increments.shape[0] == 0:
        return BlockSummary.empty(columns, cap)
    walk = np.concatenate([np.zeros((1, *columns)), np.cumsum(increments, axis=0)])
    total = walk[-1]
    running_min = np.minimum.accumulate(walk, axis=0)
    suffix_min = np.minimum.accumulate(walk[::-1], axis=0)[::-1]
    # Skorokhod map on [0, cap]: S_n = psi_n - max(min(0, min psi), max_s min(psi_s - cap,
    # min_{u >= s} psi_u)), with psi = start + walk.
    upper = np.max(np.minimum(walk - cap, suffix_min), axis=0)
    floor_end = total - np.maximum(running_min[-1], upper)
    from_cap_lower = np.minimum(0.0, cap + running_min[-1])
    from_cap_upper = np.max(np.minimum(walk, cap + suffix_min), axis=0)
    ceiling_end = cap + total - np.maximum(from_cap_lower, from_cap_upper)
    return BlockSummary(
        total=total,
        floor_end=floor_end,
        ceiling_end=ceiling_end,
        rise=np.max(walk, axis=0),
        peak=np.max(walk - running_min, axis=0),
    )


def level_path(start: Array, increments: Array, cap: Array) -> Array:
    """The exact capped levels after each event, shaped like `increments` (a loop over
    events, vectorised over columns: the ground truth for the summaries)."""
    levels = np.empty_like(increments)
    level = np.asarray(start, dtype=np.float64)
    for index, step in enumerate(increments):
        level = np.clip(level + step, 0.0, cap)
        levels[index] = level
    return levels


def first_crossings(start: Array, increments: Array, threshold: Array) -> NDArray[np.int64]:
    """Per column, the index of the first event whose level reaches `threshold` (which
    must not exceed the cap), or -1; vectorised (the uncapped walk, equal below the cap)."""
    if increments.shape[0] == 0:
        return np.full(increments.shape[1:], -1, dtype=np.int64)
    walk = np.cumsum(increments, axis=0)
    lowest = np.minimum(np.minimum.accumulate(walk, axis=0), 0.0)
    levels = np.maximum(start + walk, walk - lowest)
    reached = levels >= threshold
    first = np.argmax(reached, axis=0)
    return np.where(reached.any(axis=0), first, -1).astype(np.int64)
