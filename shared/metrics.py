"""Prometheus text exposition, written by hand: histograms and metric families.

Each service keeps its counters as plain fields touched only by its event loop and
renders them on /metrics with this writer; no client library or global registry needed.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence

import numpy as np


class Histogram:
    """Counts per bucket (upper bounds inclusive, as Prometheus' `le`), sum and count."""

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self._array = np.array(self.bounds, dtype=np.float64)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def observe_many(self, values: Sequence[float]) -> None:
        """Observe a whole batch with one vectorised bucket search."""
        if not values:
            return
        array = np.asarray(values, dtype=np.float64)
        buckets = np.searchsorted(self._array, array, side="left")
        for bucket, count in enumerate(np.bincount(buckets, minlength=len(self.counts)).tolist()):
            self.counts[bucket] += count
        self.sum += float(array.sum())
        self.count += len(values)

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, cumulative count) pairs ending with +Inf."""
        running = 0
        pairs = []
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            pairs.append(("+Inf" if bound == math.inf else number(bound), running))
        return pairs


def number(value: float) -> str:
    """A sample value as Prometheus reads it: integers without a decimal point."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    pairs = ",".join(
        f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)
    )
    return "{" + pairs + "}"


class PrometheusText:
    """Builds the text exposition format, one metric family at a time."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[tuple[str, ...], float]],
        label_names: tuple[str, ...] = (),
    ) -> None:
        full = self.prefix + name
        self._lines.append(f"# HELP {full} {help_text}")
        self._lines.append(f"# TYPE {full} {kind}")
        for values, sample in sorted(samples):
            self._lines.append(f"{full}{_labels(label_names, values)} {number(float(sample))}")

    def histogram(self, name: str, help_text: str, histogram: Histogram) -> None:
        full = self.prefix + name
        self._lines.append(f"# HELP {full} {help_text}")
        self._lines.append(f"# TYPE {full} histogram")
        for le, count in histogram.cumulative():
            self._lines.append(f'{full}_bucket{{le="{le}"}} {count}')
        self._lines.append(f"{full}_sum {number(histogram.sum)}")
        self._lines.append(f"{full}_count {histogram.count}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"
