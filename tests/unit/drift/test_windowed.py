"""Windowed tests from counts: they find a shift and hold their false-alarm rate."""

from __future__ import annotations

import numpy as np
import pytest

from services.drift.domain.reference_bins import ReferenceBins
from services.drift.domain.windowed import benjamini_hochberg, chi_square, shape_tests
from shared.profile import numeric_profile


@pytest.fixture(scope="module")
def reference() -> tuple[ReferenceBins, int, float]:
    profile = numeric_profile(np.random.default_rng(20).gamma(2.0, size=10_000).tolist())
    return ReferenceBins.from_profile(profile, 32), profile.count, profile.std


def test_the_bins_are_equal_probability_under_the_reference(
    reference: tuple[ReferenceBins, int, float],
) -> None:
    bins, _, _ = reference

    np.testing.assert_allclose(bins.expected_fractions, 1 / 32, atol=1e-9)
    counts = bins.counts(np.random.default_rng(21).gamma(2.0, size=100_000))
    # within sampling error of a 10,000-row reference (sd of a share ~0.0018)
    np.testing.assert_allclose(counts / counts.sum(), 1 / 32, atol=0.007)


def test_no_drift_rejects_at_most_at_the_stated_rate(
    reference: tuple[ReferenceBins, int, float],
) -> None:
    bins, count, std = reference
    rng = np.random.default_rng(22)
    windows = [
        shape_tests(bins, bins.counts(rng.gamma(2.0, size=500)), count, std) for _ in range(400)
    ]

    for alpha in (0.01, 0.05, 0.2):
        assert np.mean([w.ks_p < alpha for w in windows]) <= alpha + 2.5 * np.sqrt(alpha / 400)
        assert np.mean([w.chi_square_p < alpha for w in windows]) <= alpha + 2.5 * np.sqrt(
            alpha / 400
        )
    assert np.median([w.psi for w in windows]) < 0.1


def test_a_shift_of_half_a_sd_in_500_events_is_found(
    reference: tuple[ReferenceBins, int, float],
) -> None:
    bins, count, std = reference
    rng = np.random.default_rng(23)

    tests = shape_tests(bins, bins.counts(rng.gamma(2.0, size=500) + 0.5 * std), count, std)

    assert tests.p_value < 1e-6
    assert tests.wasserstein_sd == pytest.approx(0.5, abs=0.12)
    assert tests.psi > 0.1


def test_unseen_categories_count_against_the_reference() -> None:
    expected = np.array([0.5, 0.3, 0.2, 0.0])  # the last bucket: categories never seen

    quiet = chi_square(expected, np.array([250, 150, 100, 0]), 10_000)
    unseen = chi_square(expected, np.array([240, 140, 90, 30]), 10_000)

    assert quiet[1] > 0.5
    assert unseen[1] < 1e-12


def test_benjamini_hochberg_rejects_the_step_up_set() -> None:
    p_values = np.array([0.001, 0.2, 0.012, 0.03, 0.9])

    rejected = benjamini_hochberg(p_values, 0.05)

    # sorted 0.001, 0.012, 0.03, 0.2, 0.9 against 0.01, 0.02, 0.03, 0.04, 0.05
    np.testing.assert_array_equal(rejected, [True, False, True, True, False])
    assert not benjamini_hochberg(np.array([]), 0.05).size
