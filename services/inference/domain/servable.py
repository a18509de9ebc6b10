"""A loaded model version ready to answer many requests with one vectorised call."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.inference.domain.answers import Classified, Output, Regressed
from services.inference.domain.result_cache import canonical_input
from services.inference.domain.validation import BatchValidator
from shared.contracts.base import FeatureValue
from shared.signature import InputSignature, label_text

# Estimators fitted on a DataFrame warn on every call with a plain matrix; the columns are
# already in the signature's (checked) order, so the warning says nothing useful.
_FEATURE_NAMES_WARNING = "X does not have valid feature names"


class PredictFailed(Exception):
    """The estimator raised or returned something unusable for this batch."""


def _plain(value: Any) -> str | int | float | bool:
    """A class label as a JSON-friendly Python value (numpy scalars unwrapped)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclass(frozen=True, eq=False)
class ServableModel:
    """A model version's signature and estimator, plus what answers need precomputed."""

    model: str
    version: int
    signature: InputSignature
    estimator: Any
    is_classifier: bool
    class_labels: tuple[str | int | float | bool, ...]
    class_texts: tuple[str, ...]
    has_probabilities: bool
    fitted_on_frame: bool
    validator: BatchValidator
    artifact_bytes: int = 0
    """Size of the artifact it was loaded from: what the worker's memory bound counts."""
    rejected: bool = False
    """An approver rejected the version when it was loaded: it answers no pinned request."""

    @classmethod
    def wrap(
        cls,
        *,
        model: str,
        version: int,
        signature: InputSignature,
        estimator: Any,
        artifact_bytes: int = 0,
        rejected: bool = False,
    ) -> ServableModel:
        is_classifier = signature.task == "classification"
        classes = getattr(estimator, "classes_", None) if is_classifier else None
        labels = tuple(_plain(label) for label in classes) if classes is not None else ()
        probabilistic = is_classifier and bool(labels) and hasattr(estimator, "predict_proba")
        return cls(
            model=model,
            version=version,
            signature=signature,
            estimator=estimator,
            is_classifier=is_classifier,
            class_labels=labels,
            class_texts=tuple(label_text(label) for label in labels),
            has_probabilities=probabilistic,
            fitted_on_frame=getattr(estimator, "feature_names_in_", None) is not None,
            validator=BatchValidator(signature),
            artifact_bytes=artifact_bytes,
            rejected=rejected,
        )

    def matrix(self, inputs: Sequence[Mapping[str, FeatureValue]]) -> NDArray[Any]:
        """Inputs (already checked against the signature) as the matrix `predict_matrix` takes."""
        try:
            return self.signature.to_matrix(inputs)
        except Exception as error:
            raise PredictFailed(f"{type(error).__name__}: {error}") from error

    def row_keys(
        self, inputs: Sequence[Mapping[str, FeatureValue]], matrix: NDArray[Any]
    ) -> list[bytes]:
        """Per row, bytes that are equal only if the model sees equal inputs (cache keys).

        A numeric matrix's row bytes are that already, and cost one slice each; other
        inputs are serialised with sorted keys.
        """
        if matrix.dtype != np.float64:
            return [canonical_input(record) for record in inputs]
        data = np.ascontiguousarray(matrix).tobytes()
        width = matrix.shape[1] * matrix.itemsize
        return [data[start : start + width] for start in range(0, len(data), width)]

    def predict(self, inputs: Sequence[Mapping[str, FeatureValue]]) -> list[Output]:
        """One output per input (already checked against the signature), in order."""
        return self.predict_matrix(self.matrix(inputs))

    def predict_matrix(self, matrix: NDArray[Any]) -> list[Output]:
        """One output per row of a matrix from `matrix`, in order."""
        try:
            with warnings.catch_warnings():
                if self.fitted_on_frame:
                    warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING)
                if self.has_probabilities:
                    return self._classify_with_probabilities(matrix)
                raw = np.asarray(self.estimator.predict(matrix))
        except PredictFailed:
            raise
        except Exception as error:
            raise PredictFailed(f"{type(error).__name__}: {error}") from error
        if raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw.ravel()
        if raw.shape != (matrix.shape[0],):
            raise PredictFailed(
                f"the model returned shape {raw.shape} for {matrix.shape[0]} inputs"
            )
        if self.is_classifier:
            return [Classified(label=_plain(label), probabilities={}) for label in raw]
        return [Regressed(value=value) for value in raw.astype(np.float64).tolist()]

    def _classify_with_probabilities(self, matrix: Any) -> list[Output]:
        probabilities = np.asarray(self.estimator.predict_proba(matrix), dtype=np.float64)
        if probabilities.shape != (matrix.shape[0], len(self.class_texts)):
            raise PredictFailed(
                f"predict_proba returned shape {probabilities.shape}, expected "
                f"({matrix.shape[0]}, {len(self.class_texts)})"
            )
        best = probabilities.argmax(axis=1).tolist()
        labels, texts = self.class_labels, self.class_texts
        return [
            Classified(labels[index], dict(zip(texts, row, strict=True)))
            for index, row in zip(best, probabilities.tolist(), strict=True)
        ]
