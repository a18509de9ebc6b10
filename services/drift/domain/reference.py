"""A reference profile compiled once into what the sketcher and the judge compute with."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.drift.domain.channels import spread_scores
from services.drift.domain.normal_scores import NormalScorer
from services.drift.domain.reference_bins import ReferenceBins
from services.drift.domain.settings import DataDriftSettings
from services.drift.domain.thresholds import threshold_for_arl
from shared.profile import CategoricalProfile, NumericProfile, ReferenceProfile


@dataclass(frozen=True)
class NumericReference:
    """Numeric features in a fixed order, with their scorers, bins and CUSUM constants
    (arrays shaped (features, channels))."""

    names: tuple[str, ...]
    profiles: tuple[NumericProfile, ...]
    scorers: tuple[NormalScorer, ...]
    bins: tuple[ReferenceBins, ...]
    spread_centres: NDArray[np.float64]
    reference_values: NDArray[np.float64]
    thresholds: NDArray[np.float64]
    caps: NDArray[np.float64]
    close_levels: NDArray[np.float64]

    def scores(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Normal scores of an (events, features) array, column by column."""
        z = np.empty(values.shape, dtype=np.float64)
        for column, scorer in enumerate(self.scorers):
            z[:, column] = scorer(values[:, column])
        return z


@dataclass(frozen=True)
class CategoricalReference:
    names: tuple[str, ...]
    profiles: tuple[CategoricalProfile, ...]
    categories: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class CompiledReference:
    settings: DataDriftSettings
    numeric: NumericReference
    categorical: CategoricalReference


def compile_reference(
    profile: ReferenceProfile, settings: DataDriftSettings | None = None
) -> CompiledReference:
    """Scorers, bins and thresholds for every feature of `profile`."""
    settings = settings or DataDriftSettings()
    numeric = {n: p for n, p in profile.features.items() if isinstance(p, NumericProfile)}
    categorical = {n: p for n, p in profile.features.items() if isinstance(p, CategoricalProfile)}
    scorers = tuple(NormalScorer.from_profile(p) for p in numeric.values())
    design = np.array([settings.mean_shift / 2, settings.mean_shift / 2, settings.spread_shift / 2])
    k = np.array(
        [design + reference_allowance(p.count, settings) for p in numeric.values()]
    ).reshape(len(numeric), 3)
    run_lengths = settings.in_control_run_lengths()
    thresholds = np.array(
        [
            [
                threshold_for_arl(float(value), run)
                for value, run in zip(row, run_lengths, strict=True)
            ]
            for row in k
        ]
    ).reshape(len(numeric), 3)
    return CompiledReference(
        settings=settings,
        numeric=NumericReference(
            names=tuple(numeric),
            profiles=tuple(numeric.values()),
            scorers=scorers,
            bins=tuple(
                ReferenceBins.from_profile(p, settings.score_bins) for p in numeric.values()
            ),
            spread_centres=np.array([_spread_centre(s) for s in scorers]),
            reference_values=k,
            thresholds=thresholds,
            caps=thresholds * settings.cap_factor,
            close_levels=thresholds * settings.close_factor,
        ),
        categorical=CategoricalReference(
            names=tuple(categorical),
            profiles=tuple(categorical.values()),
            categories=tuple(tuple(p.frequencies) for p in categorical.values()),
        ),
    )


def reference_allowance(rows: int, settings: DataDriftSettings) -> float:
    """How much to add to each channel's reference value k because the reference is a
    sample of `rows`, not the population.

    Scored against a reference of n rows, live data from the very same population has
    channel means off by about 1/sqrt(n) (the reference's quantiles are estimates). A
    CUSUM's false-alarm rate grows exponentially with such a bias (by exp(2 b h)), so a
    small training set would alarm on data that never changed: 4,000 rows made a spread
    channel alarm about once in fifty clean streams of 8,000 events. Adding
    `reference_errors` standard errors to k keeps the rate for all but the unluckiest
    references; the threshold for the target rate then drops, so the delay for the design
    shift barely moves (+2% at 10,000 rows), while a 100-row reference pays with slower
    detection instead of false alarms.
    """
    return settings.reference_errors / math.sqrt(max(rows, 1))


def _spread_centre(scorer: NormalScorer) -> float:
    """0 for a continuous feature (its spread score is N(0, 1)); for a discrete one the
    mean spread score over the reference grid when positive, so it never drifts up by
    itself (lowering a negative mean would only make the channel more eager)."""
    if not scorer.tied:
        return 0.0
    return max(0.0, float(np.mean(spread_scores(scorer.grid_scores()))))
