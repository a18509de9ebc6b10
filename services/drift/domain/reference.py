"""A reference profile compiled once into what the sketcher and the judge compute with."""

from __future__ import annotations

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
    k = np.array([settings.mean_shift / 2, settings.mean_shift / 2, settings.spread_shift / 2])
    thresholds = np.array(
        [
            threshold_for_arl(value, run_length)
            for value, run_length in zip(k, settings.in_control_run_lengths(), strict=True)
        ]
    )
    features = len(numeric)
    shape = (features, 3)
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
            reference_values=np.broadcast_to(k, shape).copy(),
            thresholds=np.broadcast_to(thresholds, shape).copy(),
            caps=np.broadcast_to(thresholds * settings.cap_factor, shape).copy(),
            close_levels=np.broadcast_to(thresholds * settings.close_factor, shape).copy(),
        ),
        categorical=CategoricalReference(
            names=tuple(categorical),
            profiles=tuple(categorical.values()),
            categories=tuple(tuple(p.frequencies) for p in categorical.values()),
        ),
    )


def _spread_centre(scorer: NormalScorer) -> float:
    """0 for a continuous feature (its spread score is N(0, 1)); for a discrete one the
    mean spread score over the reference grid when positive, so it never drifts up by
    itself (lowering a negative mean would only make the channel more eager)."""
    if not scorer.tied:
        return 0.0
    return max(0.0, float(np.mean(spread_scores(scorer.grid_scores()))))
