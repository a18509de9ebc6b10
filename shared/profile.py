"""A reference profile of training data, the baseline the drift service compares against.

Numeric histograms use decile cut points of the training data. `bin_edges` holds only
the interior cut points, ascending and distinct, so the outer bins are open-ended
without storing infinities: bin i holds values in [edges[i-1], edges[i]), and there are
len(edges) + 1 bins. Everything here is finite, so profiles serialise to plain JSON.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Final, Literal

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.base import FeatureValue
from shared.signature import MAX_CATEGORIES, InputSignature, label_text
from shared.tabular import InvalidDataset, TabularData

QUANTILE_LEVELS: Final[dict[str, float]] = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
HISTOGRAM_BINS: Final = 10
SCORE_QUANTILES: Final = 255
"""Quantiles kept for normal scores: at levels k / 256, fine enough that z = Phi^-1(F(x))
is N(0, 1) to within a 1/256 step of probability, small enough for a stored profile."""
OTHER_CATEGORY: Final = "__other__"
_DECILES = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)[1:-1]
CONFIDENCE_BIN_EDGES: Final = [round(0.05 * index, 2) for index in range(1, 20)]
SHARE_SUM_TOLERANCE: Final = 1e-6
_SCORE_LEVELS = np.arange(1, SCORE_QUANTILES + 1) / (SCORE_QUANTILES + 1)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class NumericProfile(_Frozen):
    """Summary of a numeric column; statistics are over the non-missing values."""

    kind: Literal["numeric"] = "numeric"
    count: int = Field(ge=1)
    missing: int = Field(ge=0)
    mean: float
    std: float = Field(ge=0.0)
    min: float
    max: float
    quantiles: dict[str, float] = Field(description="Keyed p01, p05, p25, p50, p75, p95, p99.")
    bin_edges: list[float] = Field(description="Interior cut points; outer bins are open.")
    bin_fractions: list[float] = Field(description="Share of values per bin; len(edges) + 1.")
    score_quantiles: list[float] | None = Field(
        default=None,
        description="Quantiles at levels k / (n + 1), k = 1..n, for normal scores; "
        "absent in profiles stored before they existed.",
    )

    @model_validator(mode="after")
    def _bins_consistent(self) -> NumericProfile:
        if len(self.bin_fractions) != len(self.bin_edges) + 1:
            raise ValueError("bin_fractions needs exactly one more entry than bin_edges")
        if any(low >= high for low, high in itertools.pairwise(self.bin_edges)):
            raise ValueError("bin_edges must be strictly increasing")
        scores = self.score_quantiles
        if scores is not None and (
            len(scores) < 3 or any(low > high for low, high in itertools.pairwise(scores))
        ):
            raise ValueError("score_quantiles needs at least 3 values in ascending order")
        return self


class CategoricalProfile(_Frozen):
    """Summary of a category, boolean or class-label column (labels as text)."""

    kind: Literal["categorical"] = "categorical"
    count: int = Field(ge=0)
    missing: int = Field(ge=0)
    frequencies: dict[str, float] = Field(description="Label -> share of non-missing values.")


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


def _check_shares(name: str, shares: Iterable[float]) -> None:
    """Shares come from an untrusted child: each in [0, 1] and together about 1."""
    values = list(shares)
    if any(not 0.0 <= share <= 1.0 for share in values):
        raise ValueError(f"{name} must each lie in [0, 1]")
    if abs(sum(values) - 1.0) > SHARE_SUM_TOLERANCE:
        raise ValueError(f"{name} must sum to 1, not {sum(values):.6g}")


class ConfidenceProfile(_Frozen):
    """The highest class probability per row on fixed bins, from which drift estimates accuracy."""

    bin_edges: list[float] = Field(description="Interior cut points: 0.05, 0.10, ..., 0.95.")
    bin_fractions: list[float] = Field(description="Share of rows per bin; len(edges) + 1.")
    mean: float = Field(ge=0.0, le=1.0, description="Mean highest probability.")

    @model_validator(mode="after")
    def _on_the_fixed_bins(self) -> ConfidenceProfile:
        if self.bin_edges != CONFIDENCE_BIN_EDGES:
            raise ValueError("confidence bin_edges must be the fixed 0.05-wide bins")
        if len(self.bin_fractions) != len(self.bin_edges) + 1:
            raise ValueError("bin_fractions needs exactly one more entry than bin_edges")
        _check_shares("confidence bin_fractions", self.bin_fractions)
        bounds = [0.0, *self.bin_edges, 1.0]
        lowest = sum(
            share * low for share, low in zip(self.bin_fractions, bounds[:-1], strict=True)
        )
        highest = sum(
            share * high for share, high in zip(self.bin_fractions, bounds[1:], strict=True)
        )
        if not lowest - SHARE_SUM_TOLERANCE <= self.mean <= highest + SHARE_SUM_TOLERANCE:
            raise ValueError("the mean confidence does not fit its histogram")
        return self


class ClassPredictionProfile(_Frozen):
    """What a classifier predicted on its training rows: class shares and its confidence."""

    kind: Literal["classes"] = "classes"
    rows: int = Field(ge=1, description="Training rows predicted.")
    frequencies: dict[str, float] = Field(
        max_length=MAX_CATEGORIES, description="Predicted label (as text) -> share of rows."
    )
    confidence: ConfidenceProfile | None = Field(
        default=None, description="Absent when the estimator cannot predict probabilities."
    )

    @model_validator(mode="after")
    def _shares(self) -> ClassPredictionProfile:
        _check_shares("predicted class frequencies", self.frequencies.values())
        return self


class ScorePredictionProfile(_Frozen):
    """What a regressor predicted on its training rows."""

    kind: Literal["scores"] = "scores"
    rows: int = Field(ge=1, description="Training rows predicted.")
    values: NumericProfile

    @model_validator(mode="after")
    def _consistent(self) -> ScorePredictionProfile:
        values = self.values
        if values.count + values.missing != self.rows:
            raise ValueError("predicted values and missing ones must add up to the rows")
        if len(values.bin_edges) >= HISTOGRAM_BINS:
            raise ValueError(f"at most {HISTOGRAM_BINS} bins of predicted values")
        _check_shares("predicted value bin_fractions", values.bin_fractions)
        if set(values.quantiles) != set(QUANTILE_LEVELS):
            raise ValueError(f"predicted value quantiles must be keyed {list(QUANTILE_LEVELS)}")
        # Rounding may put a mean or an interpolated quantile an ulp outside the range.
        slack = 1e-9 * max(1.0, abs(values.min), abs(values.max))
        ordered = [values.min, *(values.quantiles[key] for key in QUANTILE_LEVELS), values.max]
        if any(low > high + slack for low, high in itertools.pairwise(ordered)):
            raise ValueError("predicted value quantiles must rise from min to max")
        if not values.min - slack <= values.mean <= values.max + slack:
            raise ValueError("the mean predicted value must lie between min and max")
        return self


PredictionProfile = Annotated[
    ClassPredictionProfile | ScorePredictionProfile, Field(discriminator="kind")
]


class ReferenceProfile(_Frozen):
    """The training data of a model version, summarised per feature and for the target,
    and what the version itself predicted on it (absent in profiles stored before)."""

    rows: int = Field(ge=0)
    features: dict[str, ColumnProfile]
    target: ColumnProfile
    predictions: PredictionProfile | None = None


def build_profile(data: TabularData, signature: InputSignature) -> ReferenceProfile:
    """Profile every signature feature and the target of the training data."""
    features: dict[str, NumericProfile | CategoricalProfile] = {}
    for spec in signature.features:
        values = _column(data, spec.name)
        numeric = spec.kind in ("number", "integer")
        features[spec.name] = _profile(spec.name, values, numeric=numeric)
    target_values = _column(data, signature.target)
    target = _profile(signature.target, target_values, numeric=signature.task == "regression")
    return ReferenceProfile(rows=data.row_count, features=features, target=target)


def numeric_profile(values: Sequence[FeatureValue]) -> NumericProfile:
    """Statistics and decile histogram; None and non-finite values count as missing."""
    numbers = np.array([value for value in values if value is not None], dtype=np.float64)
    numbers = numbers[np.isfinite(numbers)]
    if numbers.size == 0:
        raise InvalidDataset("no numeric values to profile")
    levels = list(QUANTILE_LEVELS.values())
    quantiles = np.quantile(numbers, levels)
    edges = np.unique(np.quantile(numbers, _DECILES))
    return NumericProfile(
        count=int(numbers.size),
        missing=len(values) - int(numbers.size),
        mean=float(numbers.mean()),
        std=float(numbers.std()),
        min=float(numbers.min()),
        max=float(numbers.max()),
        quantiles={
            key: float(value) for key, value in zip(QUANTILE_LEVELS, quantiles, strict=True)
        },
        bin_edges=[float(edge) for edge in edges],
        bin_fractions=histogram_fractions(edges.tolist(), numbers),
        score_quantiles=np.maximum.accumulate(np.quantile(numbers, _SCORE_LEVELS)).tolist(),
    )


def categorical_profile(values: Sequence[FeatureValue]) -> CategoricalProfile:
    """Label frequencies, labels as canonical text (booleans as "true"/"false")."""
    counts = Counter(label_text(value) for value in values if value is not None)
    present = sum(counts.values())
    return CategoricalProfile(
        count=present,
        missing=len(values) - present,
        frequencies={label: counts[label] / present for label in sorted(counts)},
    )


def class_prediction_profile(
    labels: Sequence[object], probabilities: ArrayLike | None = None
) -> ClassPredictionProfile:
    """Shares of the predicted labels (as text, like the target's) and, given the predicted
    probabilities (rows x classes), the histogram of each row's highest one."""
    if len(labels) == 0:
        raise ValueError("no predictions to profile")
    counts = Counter(label_text(label) for label in labels)
    return ClassPredictionProfile(
        rows=len(labels),
        frequencies={label: counts[label] / len(labels) for label in sorted(counts)},
        confidence=None if probabilities is None else confidence_profile(probabilities),
    )


def confidence_profile(probabilities: ArrayLike) -> ConfidenceProfile:
    """The highest probability per row on the fixed confidence bins."""
    matrix = np.asarray(probabilities, dtype=np.float64)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError("probabilities must be a non-empty rows x classes matrix")
    if not np.isfinite(matrix).all() or matrix.min() < 0.0 or matrix.max() > 1.0:
        raise ValueError("probabilities must be finite and within [0, 1]")
    highest = matrix.max(axis=1)
    return ConfidenceProfile(
        bin_edges=CONFIDENCE_BIN_EDGES,
        bin_fractions=histogram_fractions(CONFIDENCE_BIN_EDGES, highest),
        mean=float(highest.mean()),
    )


def score_prediction_profile(values: Sequence[float]) -> ScorePredictionProfile:
    """A numeric profile of predicted values; non-finite predictions count as missing."""
    return ScorePredictionProfile(rows=len(values), values=numeric_profile(values))


def bin_index(edges: Sequence[float], value: float) -> int:
    """The histogram bin of `value`: 0 below edges[0], len(edges) at or above edges[-1]."""
    if math.isnan(value):
        raise ValueError("a missing value (NaN) has no bin")
    return bisect.bisect_right(edges, value)


def histogram_fractions(edges: Sequence[float], values: ArrayLike) -> list[float]:
    """Share of the finite `values` in each bin defined by `edges`; zeros if there are none."""
    numbers = np.asarray(values, dtype=np.float64).ravel()
    numbers = numbers[~np.isnan(numbers)]
    bins = len(edges) + 1
    if numbers.size == 0:
        return [0.0] * bins
    indices = np.searchsorted(np.asarray(edges, dtype=np.float64), numbers, side="right")
    counts = np.bincount(indices, minlength=bins)
    return [float(count) / numbers.size for count in counts]


def category_fractions(
    expected: Mapping[str, float], values: Iterable[FeatureValue]
) -> tuple[list[float], list[float]]:
    """Reference and observed shares aligned per training label, plus a last "other" bucket.

    Labels never seen in training land in the other bucket, whose reference share is 0.
    Missing values are left out. The result feeds `population_stability_index`.
    """
    labels = list(expected)
    positions = {label: index for index, label in enumerate(labels)}
    counts = [0] * (len(labels) + 1)
    for value in values:
        if value is not None:
            counts[positions.get(label_text(value), len(labels))] += 1
    total = sum(counts)
    actual = [count / total for count in counts] if total else [0.0] * len(counts)
    return [*expected.values(), 0.0], actual


def population_stability_index(
    expected_fractions: Sequence[float],
    actual_fractions: Sequence[float],
    *,
    floor: float = 1e-4,
) -> float:
    """PSI = sum((a - e) * ln(a / e)); shares below `floor` are raised to it so empty bins count.

    Rule of thumb: < 0.1 stable, 0.1 to 0.25 moderate shift, > 0.25 major shift.
    """
    if len(expected_fractions) != len(actual_fractions):
        raise ValueError(
            f"bin counts differ: {len(expected_fractions)} expected, {len(actual_fractions)} actual"
        )
    if not floor > 0.0:
        raise ValueError("floor must be positive")
    expected = np.maximum(np.asarray(expected_fractions, dtype=np.float64), floor)
    actual = np.maximum(np.asarray(actual_fractions, dtype=np.float64), floor)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _column(data: TabularData, name: str) -> list[FeatureValue]:
    try:
        return data.columns[name]
    except KeyError:
        raise InvalidDataset(f"column {name!r} of the signature is not in the data") from None


def _profile(
    name: str, values: Sequence[FeatureValue], *, numeric: bool
) -> NumericProfile | CategoricalProfile:
    if not numeric:
        return categorical_profile(values)
    try:
        return numeric_profile(values)
    except InvalidDataset as exc:
        raise InvalidDataset(f"column {name!r}: {exc}") from None
