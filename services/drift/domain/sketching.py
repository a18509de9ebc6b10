"""The sketcher's half of the drift domain: one batch of a stream laid out as the judge
reads it (data and prediction sketches against the version's compiled reference, error
bits of labels, confidence counts of predictions)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from services.drift.domain.concept import ConceptSettings, LabelSketch
from services.drift.domain.data_sketch import sketch_batch
from services.drift.domain.performance import (
    PerformanceSettings,
    sketch_confidences,
)
from services.drift.domain.reference import CompiledReference, compile_reference
from services.drift.domain.settings import DataDriftSettings
from services.drift.domain.version_reference import VersionReference
from shared.contracts.base import FeatureValue
from shared.kafka.stream_fields import ClassifierFields, RegressorFields
from shared.profile import (
    CategoricalProfile,
    ClassPredictionProfile,
    ColumnProfile,
    ReferenceProfile,
    ScorePredictionProfile,
)
from shared.signature import label_text

KEPT_COMPILED = 256
PREDICTED = "predicted"
"""The one column of the prediction-drift reference."""


@dataclass(frozen=True)
class MonitorSettings:
    data: DataDriftSettings = field(default_factory=DataDriftSettings)
    concept: ConceptSettings = field(default_factory=ConceptSettings)
    performance: PerformanceSettings = field(default_factory=PerformanceSettings)


def prediction_profile(reference: VersionReference) -> ReferenceProfile:
    """The version's own predictions on its training rows when the registry has them,
    else its training target (what a faithful model predicts, roughly)."""
    profile = reference.profile
    stored = profile.predictions
    column: ColumnProfile
    if isinstance(stored, ClassPredictionProfile):
        column = CategoricalProfile(
            count=stored.rows, missing=0, frequencies=dict(stored.frequencies)
        )
    elif isinstance(stored, ScorePredictionProfile):
        column = stored.values
    else:
        column = profile.target
    return ReferenceProfile(rows=profile.rows, features={PREDICTED: column}, target=column)


class Compiled:
    """Compiled references per version: compiling costs more than a batch."""

    def __init__(self, settings: DataDriftSettings) -> None:
        self._settings = settings
        self._inputs: dict[tuple[str, int], CompiledReference] = {}
        self._predictions: dict[tuple[str, int], CompiledReference] = {}

    def inputs(self, reference: VersionReference) -> CompiledReference:
        key = (reference.model, reference.version)
        found = self._inputs.get(key)
        if found is None:
            found = compile_reference(reference.profile, self._settings)
            self._remember(self._inputs, key, found)
        return found

    def predictions(self, reference: VersionReference) -> CompiledReference:
        key = (reference.model, reference.version)
        found = self._predictions.get(key)
        if found is None:
            found = compile_reference(prediction_profile(reference), self._settings)
            self._remember(self._predictions, key, found)
        return found

    @staticmethod
    def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= KEPT_COMPILED:
            cache.pop(next(iter(cache)))
        cache[key] = value


class VersionSketching:
    """The sketcher's half: one batch of a stream, laid out for the judge."""

    def __init__(self, settings: MonitorSettings) -> None:
        self._compiled = Compiled(settings.data)

    def requests(
        self, reference: VersionReference, inputs: Sequence[Mapping[str, FeatureValue]]
    ) -> dict[str, Any]:
        compiled = self._compiled.inputs(reference)
        numeric = numeric_matrix(inputs, compiled.numeric.names)
        categorical = [[row.get(name) for row in inputs] for name in compiled.categorical.names]
        return {"data": sketch_batch(compiled, numeric, categorical).to_json()}

    def predictions(
        self, reference: VersionReference, outputs: Sequence[ClassifierFields | RegressorFields]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        compiled = self._compiled.predictions(reference)
        if compiled.numeric.names:
            values = np.array(
                [[o.value if isinstance(o, RegressorFields) else math.nan] for o in outputs]
            )
            body["predicted"] = sketch_batch(compiled, values, []).to_json()
        else:
            labels = [
                label_text(o.label) if isinstance(o, ClassifierFields) else None for o in outputs
            ]
            empty = np.empty((len(outputs), 0))
            body["predicted"] = sketch_batch(compiled, empty, [labels]).to_json()
        confidences = [_confidence(o) for o in outputs if isinstance(o, ClassifierFields)]
        if confidences:
            body["confidence"] = sketch_confidences(confidences).to_json()
        return body

    def labels(self, reference: VersionReference, correct: Sequence[bool]) -> dict[str, Any]:
        return {
            "labels": LabelSketch("".join("0" if right else "1" for right in correct)).to_json()
        }


def numeric_matrix(
    inputs: Sequence[Mapping[str, FeatureValue]], names: Sequence[str]
) -> np.ndarray:
    """Rows x `names` as floats; a value that is not a number (absent, None, text, a
    boolean) is NaN. The common batch, every value an int or a float, is read in C."""
    if not names or not inputs:
        return numeric_matrix_by_value(inputs, names)
    pick = itemgetter(*names)
    try:
        rows = [pick(row) for row in inputs]
    except KeyError:
        return numeric_matrix_by_value(inputs, names)
    if len(names) == 1:
        rows = [(value,) for value in rows]
    if not set(map(type, chain.from_iterable(rows))) <= _NUMBER_TYPES:
        return numeric_matrix_by_value(inputs, names)
    values = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * len(names))
    return values.reshape(len(rows), len(names))


_NUMBER_TYPES = frozenset({float, int})


def numeric_matrix_by_value(
    inputs: Sequence[Mapping[str, FeatureValue]], names: Sequence[str]
) -> np.ndarray:
    """The reference reading of `numeric_matrix`, one value at a time."""
    numeric = np.empty((len(inputs), len(names)), dtype=np.float64)
    for column, name in enumerate(names):
        numeric[:, column] = [_number(row.get(name)) for row in inputs]
    return numeric


def _number(value: FeatureValue) -> float:
    """A feature's value as a float; NaN (missing) for anything that is not a number,
    including integers past a float's range (JSON allows them)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.nan


def _confidence(output: ClassifierFields) -> float:
    values = list(output.probabilities.values())
    if not values:
        return math.nan
    top = max(values)
    return top if math.isfinite(top) else math.nan
