"""The input signature of a model version: which features it takes, as seen in training."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.base import FeatureValue
from shared.tabular import InvalidDataset, TabularData

FeatureKind = Literal["number", "integer", "boolean", "category"]
Task = Literal["classification", "regression"]
ProblemCode = Literal[
    "missing_feature",
    "unknown_feature",
    "wrong_type",
    "out_of_range",
    "unknown_category",
    "null_not_allowed",
]

_NUMERIC_KINDS: frozenset[str] = frozenset({"number", "integer", "boolean"})
_CATEGORY_PREVIEW = 5
_COMPILED_KEY = "compiled_checkers"
MAX_CATEGORIES: Final = 1000
"""Most distinct values a category feature or a classification target may have."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class InputProblem(_Frozen):
    """One reason an input record does not fit the signature."""

    field: str
    code: ProblemCode
    message: str


class FeatureSpec(_Frozen):
    """One input feature: its type and what values training saw."""

    name: str = Field(min_length=1)
    kind: FeatureKind
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str] | None = None
    nullable: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSpec:
        numeric = self.kind in ("number", "integer")
        if not numeric and (self.minimum is not None or self.maximum is not None):
            raise ValueError(f"feature {self.name!r}: only numeric features have a range")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"feature {self.name!r}: minimum is above maximum")
        if (self.kind == "category") != (self.categories is not None):
            raise ValueError(f"feature {self.name!r}: categories go with kind 'category' only")
        return self


_Checker = Callable[[object, float], InputProblem | None]
_Compiled = tuple[list[FeatureSpec], tuple[tuple[str, _Checker], ...], frozenset[str]]


class InputSignature(_Frozen):
    """What a model version accepts, inferred from its training data."""

    features: list[FeatureSpec] = Field(min_length=1)
    target: str = Field(min_length=1)
    task: Task
    classes: list[str] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> InputSignature:
        names = self.feature_names
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        if self.target in names:
            raise ValueError(f"the target {self.target!r} cannot also be a feature")
        if self.task == "classification":
            if self.classes is None or len(set(self.classes)) < 2:
                raise ValueError("a classification signature needs at least 2 distinct classes")
        elif self.classes is not None:
            raise ValueError("a regression signature has no classes")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [spec.name for spec in self.features]

    def check(
        self, inputs: Mapping[str, FeatureValue], *, range_tolerance: float = 0.0
    ) -> list[InputProblem]:
        """Every way `inputs` differs from the training data; empty when it fits.

        Values may lie up to `range_tolerance` times the training range outside it.
        """
        if not range_tolerance >= 0.0:
            raise ValueError("range_tolerance must be zero or positive")
        _, checkers, known = self._compile()
        problems: list[InputProblem] = []
        matched = 0
        for name, checker in checkers:
            if name in inputs:
                matched += 1
                problem = checker(inputs[name], range_tolerance)
                if problem is not None:
                    problems.append(problem)
            else:
                problems.append(
                    InputProblem(
                        field=name, code="missing_feature", message=f"feature {name!r} is missing"
                    )
                )
        if matched != len(inputs):
            problems.extend(self._unknown(key) for key in inputs if key not in known)
        return problems

    def to_row(self, inputs: Mapping[str, FeatureValue]) -> list[FeatureValue]:
        """The values in feature order; call `check` first (a missing feature is a KeyError)."""
        return [inputs[spec.name] for spec in self.features]

    def to_matrix(self, batch: Sequence[Mapping[str, FeatureValue]]) -> NDArray[Any]:
        """Checked records as one matrix for a vectorised predict.

        float64 when every feature is numeric or boolean (booleans as 0/1), object
        otherwise; missing values are NaN either way.
        """
        names = self.feature_names
        shape = (len(batch), len(names))
        if all(spec.kind in _NUMERIC_KINDS for spec in self.features):
            rows = [[record[name] for name in names] for record in batch]
            return np.array(rows, dtype=np.float64).reshape(shape)
        matrix = np.empty(shape, dtype=object)
        for index, record in enumerate(batch):
            matrix[index, :] = [
                math.nan if (value := record[name]) is None else value for name in names
            ]
        return matrix

    def _compile(self) -> _Compiled:
        """Per-feature checkers, built on first use and again if model_copy replaced features.

        Kept in __dict__ beside the fields rather than as a private attribute, because
        pydantic compares private attributes in ==, and closures never compare equal.
        """
        compiled: _Compiled | None = self.__dict__.get(_COMPILED_KEY)
        if compiled is None or compiled[0] is not self.features:
            checkers = tuple((spec.name, _checker_for(spec)) for spec in self.features)
            compiled = (self.features, checkers, frozenset(self.feature_names))
            self.__dict__[_COMPILED_KEY] = compiled
        return compiled

    def _unknown(self, key: str) -> InputProblem:
        if key == self.target:
            message = f"{key!r} is the model's target, not an input feature"
        else:
            message = f"{key!r} is not a feature of this model"
        return InputProblem(field=key, code="unknown_feature", message=message)


def label_text(value: object) -> str:
    """Canonical text of a class label, so CSV labels and an estimator's classes_ compare."""
    if type(value) is str:  # already text: most calls, from labels the store keeps as text
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def infer_signature(
    data: TabularData, *, target: str, task: Task, max_categories: int = MAX_CATEGORIES
) -> InputSignature:
    """The signature of a model trained on `data`: every column but the target is a feature.

    Text columns become categories; more than `max_categories` distinct values (in a
    feature or a classification target) is refused as a likely id or free-text column.
    """
    if target not in data.columns:
        columns = ", ".join(repr(name) for name in data.column_names)
        raise InvalidDataset(f"target column {target!r} not found; the columns are {columns}")
    feature_names = [name for name in data.column_names if name != target]
    if not feature_names:
        raise InvalidDataset("the data needs at least one feature column besides the target")
    if data.row_count == 0:
        raise InvalidDataset("the data has no rows")
    features = [_infer_feature(data, name, max_categories) for name in feature_names]
    classes = _infer_target(data, target, task, max_categories)
    return InputSignature(features=features, target=target, task=task, classes=classes)


def _infer_feature(data: TabularData, name: str, max_categories: int) -> FeatureSpec:
    kind = data.column_kind(name)
    values = data.columns[name]
    present = [value for value in values if value is not None]
    nullable = len(present) < len(values)
    if kind == "empty":
        raise InvalidDataset(f"feature {name!r} is empty in every row; drop the column")
    if kind == "boolean":
        return FeatureSpec(name=name, kind="boolean", nullable=nullable)
    if kind == "text":
        categories = sorted({str(value) for value in present})
        if len(categories) > max_categories:
            raise InvalidDataset(
                f"feature {name!r} has {len(categories)} distinct text values; at most"
                f" {max_categories} are supported as categories (is it an id or free text?)"
            )
        return FeatureSpec(name=name, kind="category", categories=categories, nullable=nullable)
    numbers = [float(value) for value in present if isinstance(value, int | float)]
    return FeatureSpec(
        name=name,
        kind=kind,
        minimum=min(numbers),
        maximum=max(numbers),
        nullable=nullable,
    )


def _infer_target(
    data: TabularData, target: str, task: Task, max_categories: int
) -> list[str] | None:
    """The sorted class labels for classification; None for regression."""
    kind = data.column_kind(target)
    values = data.columns[target]
    missing = sum(value is None for value in values)
    if missing:
        raise InvalidDataset(
            f"target column {target!r} is empty in {missing} of {len(values)} rows;"
            " drop or label them"
        )
    if task == "regression":
        if kind not in ("integer", "number"):
            raise InvalidDataset(
                f"a regression target must be numeric; {target!r} holds {kind} values"
            )
        return None
    distinct: list[Any] = list(set(values))
    distinct.sort()
    classes = list(dict.fromkeys(label_text(value) for value in distinct))
    if len(classes) < 2:
        raise InvalidDataset(
            f"a classification target needs at least 2 classes; {target!r} has only {classes}"
        )
    if len(classes) > max_categories:
        raise InvalidDataset(
            f"classification target {target!r} has {len(classes)} classes; the limit is"
            f" {max_categories} (is this a regression task?)"
        )
    return classes


def _checker_for(spec: FeatureSpec) -> _Checker:
    """A closure that checks one value of this feature, with no per-call set-up."""
    if spec.kind == "boolean":
        check = _boolean_checker(spec.name)
    elif spec.kind == "category":
        check = _category_checker(spec.name, spec.categories or [])
    else:
        check = _numeric_checker(spec)
    return check if spec.nullable else _refusing_null(spec.name, check)


def _refusing_null(name: str, check: _Checker) -> _Checker:
    def checker(value: object, tolerance: float) -> InputProblem | None:
        if value is None:
            return InputProblem(
                field=name,
                code="null_not_allowed",
                message=f"feature {name!r} may not be null: training data had no missing values",
            )
        return check(value, tolerance)

    return checker


def _boolean_checker(name: str) -> _Checker:
    def checker(value: object, tolerance: float) -> InputProblem | None:
        if value is None or type(value) is bool:
            return None
        return _wrong_type(name, "a boolean", value)

    return checker


def _category_checker(name: str, categories: list[str]) -> _Checker:
    allowed = frozenset(categories)
    preview = ", ".join(repr(category) for category in categories[:_CATEGORY_PREVIEW])
    if len(categories) > _CATEGORY_PREVIEW:
        preview += f", ... ({len(categories)} in all)"

    def checker(value: object, tolerance: float) -> InputProblem | None:
        if value is None:
            return None
        if type(value) is not str:
            return _wrong_type(name, "text", value)
        if value in allowed:
            return None
        return InputProblem(
            field=name,
            code="unknown_category",
            message=f"feature {name!r}: {value!r} is not a training category (seen: {preview})",
        )

    return checker


def _numeric_checker(spec: FeatureSpec) -> _Checker:
    name, minimum, maximum = spec.name, spec.minimum, spec.maximum
    integral = spec.kind == "integer"
    expected = "an integer" if integral else "a number"
    span = maximum - minimum if minimum is not None and maximum is not None else 0.0

    def checker(value: object, tolerance: float) -> InputProblem | None:
        if value is None:
            return None
        number: float
        if type(value) is int:
            number = value
        elif type(value) is float and math.isfinite(value):
            if integral and not value.is_integer():
                return _wrong_type(name, expected, value)
            number = value
        else:
            return _wrong_type(name, expected, value)
        slack = tolerance * span
        if minimum is not None and number < minimum - slack:
            return _out_of_range(name, number, "below the training minimum", minimum, tolerance)
        if maximum is not None and number > maximum + slack:
            return _out_of_range(name, number, "above the training maximum", maximum, tolerance)
        return None

    return checker


def _wrong_type(name: str, expected: str, value: object) -> InputProblem:
    return InputProblem(
        field=name,
        code="wrong_type",
        message=f"feature {name!r}: expected {expected}, got {_describe(value)}",
    )


def _out_of_range(
    name: str, value: float, where: str, limit: float, tolerance: float
) -> InputProblem:
    return InputProblem(
        field=name,
        code="out_of_range",
        message=(
            f"feature {name!r}: {_number_text(value)} is {where} {_number_text(limit)}"
            f" (tolerance {tolerance * 100:g}%)"
        ),
    )


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {label_text(value)}"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value!r}"
    return type(value).__name__


def _number_text(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
