"""Thresholds from a target false-alarm rate: Siegmund's approximation against simulation."""

from __future__ import annotations

import numpy as np
import pytest

from services.drift.domain.cusum import first_crossings
from services.drift.domain.thresholds import siegmund_arl, threshold_for_arl


def _simulated_run_lengths(
    rng: np.random.Generator, shift: float, k: float, threshold: float, runs: int
) -> np.ndarray:
    """Run lengths of independent CUSUMs from 0, simulated in blocks of events while
    some have not crossed yet."""
    lengths = np.full(runs, -1, dtype=np.int64)
    levels = np.zeros(runs)
    elapsed = 0
    block = 500
    while (pending := np.flatnonzero(lengths < 0)).size and elapsed < 200_000:
        increments = rng.normal(shift, 1.0, (block, pending.size)) - k
        first = first_crossings(levels[pending], increments, np.full(pending.size, threshold))
        lengths[pending[first >= 0]] = elapsed + first[first >= 0] + 1
        walk = np.cumsum(increments, axis=0)
        lowest = np.minimum(walk.min(axis=0), 0.0)
        levels[pending] = np.maximum(levels[pending] + walk[-1], walk[-1] - lowest)
        elapsed += block
    return lengths


@pytest.mark.parametrize("target", [200.0, 1_000.0])
def test_the_threshold_for_an_in_control_run_length_gives_it_in_simulation(target: float) -> None:
    k = 0.5
    threshold = threshold_for_arl(k, target)

    lengths = _simulated_run_lengths(np.random.default_rng(7), 0.0, k, threshold, runs=3_000)

    assert (lengths > 0).all()
    assert lengths.mean() == pytest.approx(target, rel=0.1)


def test_the_out_of_control_run_length_matches_simulation() -> None:
    k = 0.25
    threshold = threshold_for_arl(k, 10_000.0)

    lengths = _simulated_run_lengths(np.random.default_rng(8), 0.5, k, threshold, runs=3_000)

    assert lengths.mean() == pytest.approx(siegmund_arl(0.5, k, threshold), rel=0.05)


def test_the_oracle_of_the_issue_needs_about_86_events_at_one_false_alarm_per_million() -> None:
    threshold = threshold_for_arl(0.25, 1e6)

    assert siegmund_arl(0.0, 0.25, threshold) == pytest.approx(1e6, rel=1e-6)
    assert siegmund_arl(0.5, 0.25, threshold) == pytest.approx(86, abs=1)


def test_nonsense_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="reference value"):
        threshold_for_arl(0.0, 1e6)
    with pytest.raises(ValueError, match="ARL"):
        threshold_for_arl(0.25, 0.5)
