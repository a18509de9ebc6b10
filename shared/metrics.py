"""Metrics for Prometheus: a lock-free histogram for the hot path, and a scrape of a
service's counters written by prometheus-client."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector


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
    """A bucket bound as Prometheus writes it: integers without a decimal point."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return repr(value)


class _Snapshot(Collector):
    """A collector over families already read from the service's counters."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


class PrometheusText:
    """A scrape of a service's counters, as prometheus-client metric families.

    The services count in plain fields touched only by their event loop (no lock on the
    hot path); at scrape time this reads them into families, and prometheus-client
    writes the exposition format.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._families: list[Metric] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[tuple[str, ...], float]],
        label_names: tuple[str, ...] = (),
    ) -> None:
        full = self.prefix + name
        family: CounterMetricFamily | GaugeMetricFamily
        if kind == "counter":
            family = CounterMetricFamily(full, help_text, labels=label_names)
        elif kind == "gauge":
            family = GaugeMetricFamily(full, help_text, labels=label_names)
        else:
            raise ValueError(f"unknown metric kind {kind!r}")
        for values, sample in sorted(samples):
            family.add_metric(list(values), float(sample))
        self._families.append(family)

    def histogram(self, name: str, help_text: str, histogram: Histogram) -> None:
        self._families.append(
            HistogramMetricFamily(
                self.prefix + name,
                help_text,
                buckets=[(le, float(count)) for le, count in histogram.cumulative()],
                sum_value=histogram.sum,
            )
        )

    def text(self) -> str:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(self._families))
        return generate_latest(registry).decode()
