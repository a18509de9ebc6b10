"""Latency percentiles, as the demo and the benchmarks report them."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return float(sorted_values[index])


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    """Count, p50, p95, p99 and max of latencies in milliseconds."""
    ordered = sorted(values_ms)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50), 2),
        "p95_ms": round(percentile(ordered, 0.95), 2),
        "p99_ms": round(percentile(ordered, 0.99), 2),
        "max_ms": round(ordered[-1], 2) if ordered else float("nan"),
    }
