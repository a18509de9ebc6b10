"""Live-quality figures: the Wilson interval, percentiles and one variant's summary."""

from __future__ import annotations

import pytest

from services.feedback.domain.quality import Counts, percentile, summarise, wilson_interval


def test_the_wilson_interval_matches_published_values_and_stays_within_zero_and_one() -> None:
    low, high = wilson_interval(8, 10) or (0, 0)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)  # Newcombe (1998), 8/10
    assert wilson_interval(0, 5) == (0.0, pytest.approx(0.4345, abs=1e-4))
    assert wilson_interval(5, 5) == (pytest.approx(0.5655, abs=1e-4), 1.0)
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match=r"within 0\.\.3"):
        wilson_interval(4, 3)


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0], 0.95) == 10.0
    assert percentile([], 0.5) is None


def test_a_summary_has_coverage_accuracy_mae_and_the_rating_ratio() -> None:
    counts = Counts(
        model="iris", version=2, variant="canary", predictions=40, labelled=10, judged=8,
        correct=6, absolute_error_sum=0.0, valued=0, conflicts=1, ratings_up=3, ratings_down=1,
    )  # fmt: skip
    quality = summarise(counts, [5.0, 1.0, 3.0])
    assert (quality.coverage, quality.accuracy, quality.mae) == (0.25, 0.75, None)
    assert (quality.delay_p50_seconds, quality.rating_ratio, quality.conflicts) == (3.0, 0.75, 1)
    assert quality.accuracy_low is not None and quality.accuracy_low < 0.75
