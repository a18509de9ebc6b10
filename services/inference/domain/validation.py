"""Check a whole batch of inputs against a signature at once.

`InputSignature.check` costs a Python call per feature and record. For signatures whose
features are all numbers, the common case (every feature present, every value an int
or a float) is checked with a few numpy comparisons per batch instead; any record that
misses this fast path is checked by `InputSignature.check`, which alone words problems.
A record passes the fast path only if `check` would find nothing wrong with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.contracts.base import FeatureValue
from shared.signature import InputProblem, InputSignature

_NUMBER_TYPES = frozenset({int, float})
_VALID: list[InputProblem] = []
# Beyond 2**53 an int does not survive conversion to float64, so range checks could differ.
_EXACT_INT_LIMIT = 2.0**53


class BatchValidator:
    """Every record's problems with one signature, vectorised where the signature allows."""

    def __init__(self, signature: InputSignature) -> None:
        self.signature = signature
        self._names = signature.feature_names
        self._name_set = frozenset(self._names)
        self._vectorised = all(spec.kind in ("number", "integer") for spec in signature.features)
        self._integer_columns = [
            column for column, spec in enumerate(signature.features) if spec.kind == "integer"
        ]
        self._bounds: dict[float, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}

    def problems(
        self, batch: Sequence[Mapping[str, FeatureValue]], *, range_tolerance: float
    ) -> list[list[InputProblem]]:
        """Per record, in order: its problems, empty when it fits the signature."""
        if not self._vectorised or not batch:
            return [
                self.signature.check(inputs, range_tolerance=range_tolerance) for inputs in batch
            ]
        fast_rows: list[list[Any]] = []
        fast_indices: list[int] = []
        slow_indices: list[int] = []
        names, name_set = self._names, self._name_set
        for index, inputs in enumerate(batch):
            if inputs.keys() == name_set:
                row = [inputs[name] for name in names]
                if set(map(type, row)) <= _NUMBER_TYPES:
                    fast_rows.append(row)
                    fast_indices.append(index)
                    continue
            slow_indices.append(index)
        results: list[list[InputProblem]] = [_VALID] * len(batch)
        if fast_rows:
            passed = self._passes(np.array(fast_rows, dtype=np.float64), range_tolerance)
            slow_indices.extend(
                index for index, ok in zip(fast_indices, passed.tolist(), strict=True) if not ok
            )
        for index in slow_indices:
            results[index] = self.signature.check(batch[index], range_tolerance=range_tolerance)
        return results

    def _passes(self, matrix: NDArray[np.float64], tolerance: float) -> NDArray[np.bool_]:
        lower, upper = self._limits(tolerance)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(matrix).all(axis=1)
            ok &= (np.abs(matrix) < _EXACT_INT_LIMIT).all(axis=1)
            ok &= ((matrix >= lower) & (matrix <= upper)).all(axis=1)
            if self._integer_columns:
                integral = matrix[:, self._integer_columns]
                ok &= (integral == np.floor(integral)).all(axis=1)
        return np.asarray(ok, dtype=np.bool_)

    def _limits(self, tolerance: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lowest and highest accepted value per feature, computed as the checkers do."""
        cached = self._bounds.get(tolerance)
        if cached is not None:
            return cached
        lower, upper = [], []
        for spec in self.signature.features:
            minimum, maximum = spec.minimum, spec.maximum
            span = maximum - minimum if minimum is not None and maximum is not None else 0.0
            slack = tolerance * span
            lower.append(minimum - slack if minimum is not None else -math.inf)
            upper.append(maximum + slack if maximum is not None else math.inf)
        limits = (np.array(lower, dtype=np.float64), np.array(upper, dtype=np.float64))
        self._bounds[tolerance] = limits
        return limits
