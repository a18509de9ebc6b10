"""Sketches of one micro-batch of requests: mergeable sufficient statistics, JSON-able and
bounded in size, from which the judge advances its detectors without the events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from services.drift.domain.channels import channel_increments
from services.drift.domain.cusum import BlockSummary, summarise_block
from services.drift.domain.reference import CompiledReference
from shared.contracts.base import FeatureValue
from shared.signature import label_text

SUM_CLAMP: Final = 1e100
"""Raw values are clamped to +-1e100 in the sums, so no square or sum overflows."""

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NumericSketch:
    """Per numeric feature: counts, moments, bin counts and CUSUM block summaries."""

    count: IntArray
    missing: IntArray
    sum_x: FloatArray
    sum_x2: FloatArray
    sum_z: FloatArray
    sum_z2: FloatArray
    bins: tuple[IntArray, ...]
    cusum: BlockSummary

    def then(self, later: NumericSketch) -> NumericSketch:
        return NumericSketch(
            count=self.count + later.count,
            missing=self.missing + later.missing,
            sum_x=self.sum_x + later.sum_x,
            sum_x2=self.sum_x2 + later.sum_x2,
            sum_z=self.sum_z + later.sum_z,
            sum_z2=self.sum_z2 + later.sum_z2,
            bins=tuple(a + b for a, b in zip(self.bins, later.bins, strict=True)),
            cusum=self.cusum.then(later.cusum),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count.tolist(),
            "missing": self.missing.tolist(),
            "sum_x": self.sum_x.tolist(),
            "sum_x2": self.sum_x2.tolist(),
            "sum_z": self.sum_z.tolist(),
            "sum_z2": self.sum_z2.tolist(),
            "bins": [counts.tolist() for counts in self.bins],
            "cusum": self.cusum.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NumericSketch:
        count = np.asarray(data["count"], dtype=np.int64)
        return cls(
            count=count,
            missing=np.asarray(data["missing"], dtype=np.int64),
            sum_x=np.asarray(data["sum_x"], dtype=np.float64),
            sum_x2=np.asarray(data["sum_x2"], dtype=np.float64),
            sum_z=np.asarray(data["sum_z"], dtype=np.float64),
            sum_z2=np.asarray(data["sum_z2"], dtype=np.float64),
            bins=tuple(np.asarray(counts, dtype=np.int64) for counts in data["bins"]),
            cusum=BlockSummary.from_json(data["cusum"], (count.size, 3)),
        )


@dataclass(frozen=True)
class CategoricalSketch:
    """Per categorical feature: counts per reference category plus one for unseen ones,
    missing values, and the most frequent unseen names (bounded)."""

    counts: tuple[IntArray, ...]
    missing: IntArray
    unseen: tuple[dict[str, int], ...]
    top_unseen: int

    def then(self, later: CategoricalSketch) -> CategoricalSketch:
        return CategoricalSketch(
            counts=tuple(a + b for a, b in zip(self.counts, later.counts, strict=True)),
            missing=self.missing + later.missing,
            unseen=tuple(
                _top(Counter(a) + Counter(b), self.top_unseen)
                for a, b in zip(self.unseen, later.unseen, strict=True)
            ),
            top_unseen=self.top_unseen,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": [c.tolist() for c in self.counts],
            "missing": self.missing.tolist(),
            "unseen": list(self.unseen),
            "top_unseen": self.top_unseen,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CategoricalSketch:
        return cls(
            counts=tuple(np.asarray(c, dtype=np.int64) for c in data["counts"]),
            missing=np.asarray(data["missing"], dtype=np.int64),
            unseen=tuple({str(k): int(v) for k, v in u.items()} for u in data["unseen"]),
            top_unseen=int(data["top_unseen"]),
        )


@dataclass(frozen=True)
class DataSketch:
    """One batch (or several merged, in order) of one model version's requests.

    `start` and `end` are the caller's ordering marks (say epoch milliseconds) of the
    first and last event; they travel to the evidence as the window's bounds.
    """

    events: int
    numeric: NumericSketch
    categorical: CategoricalSketch
    start: int | None = None
    end: int | None = None

    def then(self, later: DataSketch) -> DataSketch:
        """This batch followed by `later`: CUSUM summaries compose in stream order."""
        return DataSketch(
            events=self.events + later.events,
            numeric=self.numeric.then(later.numeric),
            categorical=self.categorical.then(later.categorical),
            start=_pick(min, self.start, later.start),
            end=_pick(max, self.end, later.end),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "start": self.start,
            "end": self.end,
            "numeric": self.numeric.to_json(),
            "categorical": self.categorical.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataSketch:
        return cls(
            events=int(data["events"]),
            numeric=NumericSketch.from_json(data["numeric"]),
            categorical=CategoricalSketch.from_json(data["categorical"]),
            start=data.get("start"),
            end=data.get("end"),
        )


def sketch_numeric(reference: CompiledReference, values: NDArray[Any]) -> NumericSketch:
    """Sketch an (events, numeric features) array in the reference's feature order; NaN
    and +-inf count as missing."""
    numeric = reference.numeric
    raw = np.asarray(values, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[1] != len(numeric.names):
        raise ValueError(
            f"expected an (events, {len(numeric.names)}) array of numeric features, "
            f"got shape {raw.shape}"
        )
    raw = np.where(np.isfinite(raw), raw, np.nan)
    present = ~np.isnan(raw)
    z = numeric.scores(raw)
    increments = channel_increments(z, numeric.reference_values, numeric.spread_centres)
    clamped = np.clip(np.where(present, raw, 0.0), -SUM_CLAMP, SUM_CLAMP)
    scores = np.where(present, z, 0.0)
    count = present.sum(axis=0).astype(np.int64)
    return NumericSketch(
        count=count,
        missing=raw.shape[0] - count,
        sum_x=clamped.sum(axis=0),
        sum_x2=np.square(clamped).sum(axis=0),
        sum_z=scores.sum(axis=0),
        sum_z2=np.square(scores).sum(axis=0),
        bins=tuple(b.counts(raw[:, i]) for i, b in enumerate(numeric.bins)),
        cusum=summarise_block(increments, numeric.caps),
    )


def sketch_categorical(
    reference: CompiledReference, columns: Sequence[Sequence[FeatureValue]]
) -> CategoricalSketch:
    """Sketch one column of values per categorical feature, in the reference's order;
    None is missing, labels compare as canonical text (booleans "true"/"false")."""
    categorical = reference.categorical
    if len(columns) != len(categorical.names):
        raise ValueError(
            f"expected {len(categorical.names)} categorical columns, got {len(columns)}"
        )
    limit = reference.settings.top_unseen
    counts, missing, unseen = [], [], []
    for categories, column in zip(categorical.categories, columns, strict=True):
        tally = Counter(label_text(value) for value in column if value is not None)
        seen = [tally.pop(category, 0) for category in categories]
        counts.append(np.asarray([*seen, sum(tally.values())], dtype=np.int64))
        missing.append(sum(1 for value in column if value is None))
        unseen.append(_top(tally, limit))
    return CategoricalSketch(
        counts=tuple(counts),
        missing=np.asarray(missing, dtype=np.int64),
        unseen=tuple(unseen),
        top_unseen=limit,
    )


def sketch_batch(
    reference: CompiledReference,
    numeric_values: NDArray[Any],
    categorical_columns: Sequence[Sequence[FeatureValue]] = (),
    *,
    start: int | None = None,
    end: int | None = None,
) -> DataSketch:
    """The whole sketch of one batch: numeric array plus categorical columns."""
    numeric = sketch_numeric(reference, numeric_values)
    events = int(np.asarray(numeric_values).shape[0])
    if categorical_columns and any(len(column) != events for column in categorical_columns):
        raise ValueError("every categorical column needs one value per event")
    return DataSketch(
        events=events,
        numeric=numeric,
        categorical=sketch_categorical(reference, categorical_columns),
        start=start,
        end=end,
    )


def _top(tally: Counter[str], limit: int) -> dict[str, int]:
    return dict(sorted(tally.items(), key=lambda item: (-item[1], item[0]))[:limit])


def _pick(choose: Any, a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return a if b is None else b
    return int(choose(a, b))
