"""Normal scores: N(0, 1) under the reference whatever the feature's distribution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from services.drift.domain.normal_scores import FALLBACK_CLAMP, NormalScorer
from shared.profile import SCORE_QUANTILES, numeric_profile


def _scorer(values: np.ndarray) -> NormalScorer:
    return NormalScorer.from_profile(numeric_profile(values.tolist()))


def test_a_profile_keeps_score_quantiles_in_ascending_order() -> None:
    values = np.random.default_rng(1).lognormal(size=2_000)

    profile = numeric_profile(values.tolist())

    assert profile.score_quantiles is not None
    assert len(profile.score_quantiles) == SCORE_QUANTILES
    assert profile.score_quantiles == sorted(profile.score_quantiles)
    assert profile.score_quantiles[127] == pytest.approx(np.median(values), rel=0.01)


def test_scores_of_a_skewed_feature_are_standard_normal() -> None:
    rng = np.random.default_rng(2)
    scorer = _scorer(rng.lognormal(sigma=1.2, size=10_000))

    z = scorer(rng.lognormal(sigma=1.2, size=50_000))

    assert abs(z.mean()) < 0.03
    assert 0.95 < z.std() <= 1.01
    clamp = stats.norm.ppf(SCORE_QUANTILES / (SCORE_QUANTILES + 1))
    inside = z[np.abs(z) < clamp - 0.01]
    # the body (all but the clamped 1/256 tails) is N(0, 1): KS against the truncated normal
    assert stats.kstest(inside, stats.truncnorm(-clamp + 0.01, clamp - 0.01).cdf).statistic < 0.02


def test_scores_of_a_discrete_feature_are_centred_with_variance_at_most_one() -> None:
    rng = np.random.default_rng(3)
    for sample in (
        lambda size: rng.poisson(0.7, size),
        lambda size: (rng.random(size) < 0.1).astype(float),
        lambda size: np.where(rng.random(size) < 0.6, 0.0, rng.exponential(size=size)),
    ):
        scorer = _scorer(sample(10_000).astype(float))

        z = scorer(sample(50_000).astype(float))

        assert abs(z.mean()) < 0.03
        assert z.var() <= 1.0


def test_a_shift_in_raw_units_becomes_a_shift_in_reference_sd() -> None:
    rng = np.random.default_rng(4)
    scorer = _scorer(rng.normal(10.0, 3.0, 10_000))

    z = scorer(rng.normal(11.5, 3.0, 50_000))

    assert z.mean() == pytest.approx(0.5, abs=0.03)


def test_profiles_without_score_quantiles_fall_back_to_mean_and_sd() -> None:
    profile = numeric_profile([1.0, 2.0, 3.0, 4.0]).model_copy(update={"score_quantiles": None})
    scorer = NormalScorer.from_profile(profile)

    z = scorer(np.array([profile.mean, profile.mean + profile.std, np.nan, np.inf, -1e300]))

    np.testing.assert_allclose(z[:2], [0.0, 1.0])
    assert np.isnan(z[2])
    assert z[3] == FALLBACK_CLAMP and z[4] == -FALLBACK_CLAMP


def test_bad_values_give_bounded_scores_or_nan() -> None:
    scorer = _scorer(np.random.default_rng(5).normal(size=1_000))

    z = scorer(np.array([np.nan, np.inf, -np.inf, 1e308, -1e308]))

    assert np.isnan(z[0])
    assert np.all(np.abs(z[1:]) < 3.0)


def test_a_constant_reference_reads_any_change_as_an_extreme_score() -> None:
    scorer = _scorer(np.full(100, 5.0))

    z = scorer(np.array([5.0, 5.5, 4.0]))

    np.testing.assert_array_equal(z, [0.0, FALLBACK_CLAMP, -FALLBACK_CLAMP])
