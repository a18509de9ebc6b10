"""Input signatures: inference from training data and the per-request check."""

import math

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.datasets import load_diabetes, load_iris

from shared.signature import FeatureSpec, InputSignature, infer_signature, label_text
from shared.tabular import InvalidDataset, TabularData, parse_csv

TRAINING_CSV = (
    b"age,income,member,plan,score,churned\n"
    b"18,1200.5,true,basic,3,no\n"
    b"90,8800,false,premium,,yes\n"
    b"40,3000,true,basic,7,no\n"
)


def _signature() -> InputSignature:
    return infer_signature(parse_csv(TRAINING_CSV), target="churned", task="classification")


def _valid_inputs() -> dict[str, float | int | str | bool | None]:
    return {"age": 40, "income": 2500.0, "member": True, "plan": "basic", "score": 5}


def test_inference_types_ranges_categories_and_nulls() -> None:
    signature = _signature()

    assert signature.features == [
        FeatureSpec(name="age", kind="integer", minimum=18, maximum=90),
        FeatureSpec(name="income", kind="number", minimum=1200.5, maximum=8800),
        FeatureSpec(name="member", kind="boolean"),
        FeatureSpec(name="plan", kind="category", categories=["basic", "premium"]),
        FeatureSpec(name="score", kind="integer", minimum=3, maximum=7, nullable=True),
    ]
    assert signature.target == "churned"
    assert signature.task == "classification"
    assert signature.classes == ["no", "yes"]


def test_inference_from_sklearn_datasets() -> None:
    iris = load_iris()
    columns: dict[str, list[float | int | str | bool | None]] = {
        f"f{index}": iris.data[:, index].tolist() for index in range(4)
    }
    columns["species"] = [str(iris.target_names[label]) for label in iris.target]
    iris_signature = infer_signature(TabularData(columns), target="species", task="classification")

    diabetes = load_diabetes()
    columns = {name: diabetes.data[:, i].tolist() for i, name in enumerate(diabetes.feature_names)}
    columns["progression"] = diabetes.target.tolist()
    diabetes_signature = infer_signature(
        TabularData(columns), target="progression", task="regression"
    )

    assert iris_signature.classes == ["setosa", "versicolor", "virginica"]
    assert iris_signature.features[2].minimum == pytest.approx(iris.data[:, 2].min())
    assert iris_signature.features[2].maximum == pytest.approx(iris.data[:, 2].max())
    assert diabetes_signature.classes is None
    assert diabetes_signature.feature_names == list(diabetes.feature_names)
    assert all(spec.kind == "number" for spec in diabetes_signature.features)


def test_integer_classes_are_sorted_numerically_as_text() -> None:
    data = TabularData({"x": [1, 2, 3, 4], "y": [10, 2, 2, 10]})

    signature = infer_signature(data, target="y", task="classification")

    assert signature.classes == ["2", "10"]


@pytest.mark.parametrize(
    ("columns", "target", "task", "message"),
    [
        ({"a": [1, 2]}, "y", "regression", "target column 'y' not found; the columns are 'a'"),
        ({"y": [1.0, 2.0]}, "y", "regression", "at least one feature column"),
        ({"a": [1, 2], "y": ["x", "x"]}, "y", "classification", "at least 2 classes"),
        ({"a": [1, 2], "y": ["x", "z"]}, "y", "regression", "must be numeric; 'y' holds text"),
        ({"a": [1, 2], "y": [1.0, None]}, "y", "regression", "empty in 1 of 2 rows"),
        ({"a": [None, None], "y": [1.0, 2.0]}, "y", "regression", "'a' is empty in every row"),
        ({"a": ["p", "q", "r"], "y": [1, 2, 3]}, "y", "regression", "3 distinct text values"),
        ({"a": [1, 2, 3], "y": ["p", "q", "r"]}, "y", "classification", "has 3 classes"),
    ],
)
def test_inference_refuses_unusable_data(
    columns: dict[str, list[float | int | str | bool | None]],
    target: str,
    task: str,
    message: str,
) -> None:
    with pytest.raises(InvalidDataset, match=message):
        infer_signature(TabularData(columns), target=target, task=task, max_categories=2)  # type: ignore[arg-type]


def test_valid_inputs_have_no_problems() -> None:
    signature = _signature()

    assert signature.check(_valid_inputs()) == []
    assert signature.check({**_valid_inputs(), "score": None}) == []


def test_out_of_range_message_names_value_limit_and_tolerance() -> None:
    problems = _signature().check({**_valid_inputs(), "age": 250})

    assert [(p.field, p.code, p.message) for p in problems] == [
        (
            "age",
            "out_of_range",
            "feature 'age': 250 is above the training maximum 90 (tolerance 0%)",
        )
    ]


def test_below_minimum() -> None:
    problems = _signature().check({**_valid_inputs(), "income": 100.25})

    assert problems[0].code == "out_of_range"
    assert problems[0].message == (
        "feature 'income': 100.25 is below the training minimum 1200.5 (tolerance 0%)"
    )


def test_range_tolerance_is_a_share_of_the_training_range() -> None:
    signature = _signature()  # age spans 18..90, so 10% allows 10.8..97.2

    assert signature.check({**_valid_inputs(), "age": 97}, range_tolerance=0.1) == []
    assert signature.check({**_valid_inputs(), "age": 11}, range_tolerance=0.1) == []
    problems = signature.check({**_valid_inputs(), "age": 98}, range_tolerance=0.1)
    assert [p.code for p in problems] == ["out_of_range"]
    assert problems[0].message.endswith("(tolerance 10%)")
    with pytest.raises(ValueError, match="range_tolerance"):
        signature.check(_valid_inputs(), range_tolerance=-0.1)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("income", True, "expected a number, got boolean true"),
        ("income", "2500", "expected a number, got text '2500'"),
        ("income", math.nan, "expected a number, got number nan"),
        ("income", math.inf, "expected a number, got number inf"),
        ("age", 40.5, "expected an integer, got number 40.5"),
        ("age", False, "expected an integer, got boolean false"),
        ("member", 1, "expected a boolean, got integer 1"),
        ("member", "true", "expected a boolean, got text 'true'"),
        ("plan", 3, "expected text, got integer 3"),
        ("plan", ["basic"], "expected text, got list"),
    ],
)
def test_wrong_types(field: str, value: object, fragment: str) -> None:
    problems = _signature().check({**_valid_inputs(), field: value})  # type: ignore[dict-item]

    assert [(p.field, p.code) for p in problems] == [(field, "wrong_type")]
    assert problems[0].message == f"feature {field!r}: {fragment}"


def test_integers_fit_number_features_and_whole_floats_fit_integer_features() -> None:
    signature = _signature()

    assert signature.check({**_valid_inputs(), "income": 2500, "age": 40.0}) == []


def test_missing_unknown_target_null_and_category_problems_in_feature_order() -> None:
    inputs = {**_valid_inputs(), "plan": "gold", "member": None, "churned": "no", "extra": 1}
    del inputs["age"]

    problems = _signature().check(inputs)

    assert [(p.field, p.code) for p in problems] == [
        ("age", "missing_feature"),
        ("member", "null_not_allowed"),
        ("plan", "unknown_category"),
        ("churned", "unknown_feature"),
        ("extra", "unknown_feature"),
    ]
    messages = [p.message for p in problems]
    assert messages[0] == "feature 'age' is missing"
    assert "may not be null" in messages[1]
    assert (
        messages[2]
        == "feature 'plan': 'gold' is not a training category (seen: 'basic', 'premium')"
    )
    assert messages[3] == "'churned' is the model's target, not an input feature"
    assert messages[4] == "'extra' is not a feature of this model"


def test_category_preview_is_capped() -> None:
    spec = FeatureSpec(name="c", kind="category", categories=[f"v{i}" for i in range(8)])
    signature = InputSignature(features=[spec], target="y", task="regression")

    [problem] = signature.check({"c": "other"})

    assert problem.message.endswith("(seen: 'v0', 'v1', 'v2', 'v3', 'v4', ... (8 in all))")


def test_to_row_follows_feature_order() -> None:
    inputs = dict(reversed(list(_valid_inputs().items())))

    assert _signature().to_row(inputs) == [40, 2500.0, True, "basic", 5]
    with pytest.raises(KeyError):
        _signature().to_row({"age": 1})


def test_to_matrix_is_float_for_numeric_features() -> None:
    signature = InputSignature(
        features=[
            FeatureSpec(name="a", kind="number", minimum=0, maximum=1, nullable=True),
            FeatureSpec(name="b", kind="boolean"),
        ],
        target="y",
        task="regression",
    )

    matrix = signature.to_matrix([{"b": True, "a": 0.5}, {"a": None, "b": False}])

    assert matrix.dtype == np.float64
    assert matrix[0].tolist() == [0.5, 1.0]
    assert math.isnan(matrix[1, 0])
    assert matrix[1, 1] == 0.0
    assert signature.to_matrix([]).shape == (0, 2)


def test_to_matrix_is_object_with_categories() -> None:
    signature = _signature()

    matrix = signature.to_matrix([_valid_inputs(), {**_valid_inputs(), "score": None}])

    assert matrix.dtype == object
    assert matrix.shape == (2, 5)
    assert matrix[0].tolist() == [40, 2500.0, True, "basic", 5]
    assert math.isnan(matrix[1, 4])
    assert signature.to_matrix([]).shape == (0, 5)


def test_json_round_trip_keeps_equality_and_behaviour() -> None:
    signature = _signature()
    signature.check(_valid_inputs())  # builds the cached checkers

    restored = InputSignature.model_validate_json(signature.model_dump_json())

    assert restored == signature
    assert "compiled" not in signature.model_dump_json()
    assert restored.check({**_valid_inputs(), "age": 250})[0].code == "out_of_range"


def test_model_copy_with_new_features_rebuilds_checkers() -> None:
    signature = _signature()
    signature.check(_valid_inputs())

    copy = signature.model_copy(
        update={"features": [FeatureSpec(name="age", kind="integer", minimum=0, maximum=300)]}
    )

    assert copy.check({"age": 250}) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "a", "kind": "number", "minimum": 5, "maximum": 1},
        {"name": "a", "kind": "number", "categories": ["x"]},
        {"name": "a", "kind": "category"},
        {"name": "a", "kind": "boolean", "minimum": 0},
        {"name": "a", "kind": "number", "unexpected": 1},
        {"name": "", "kind": "number"},
        {"name": "a", "kind": "number", "maximum": math.inf},
    ],
)
def test_feature_spec_rejects_inconsistent_fields(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FeatureSpec.model_validate(fields)


def test_signature_rejects_inconsistent_fields() -> None:
    feature = FeatureSpec(name="a", kind="boolean")

    with pytest.raises(ValidationError, match="at least 2 distinct classes"):
        InputSignature(features=[feature], target="y", task="classification", classes=["x"])
    with pytest.raises(ValidationError, match="no classes"):
        InputSignature(features=[feature], target="y", task="regression", classes=["x", "z"])
    with pytest.raises(ValidationError, match="unique"):
        InputSignature(features=[feature, feature], target="y", task="regression")
    with pytest.raises(ValidationError, match="cannot also be a feature"):
        InputSignature(features=[feature], target="a", task="regression")
    signature = InputSignature(features=[feature], target="y", task="regression")
    with pytest.raises(ValidationError):
        signature.target = "z"  # type: ignore[misc]


def test_label_text_is_canonical() -> None:
    assert label_text(np.int64(3)) == "3"
    assert label_text(np.bool_(True)) == "true"
    assert label_text(False) == "false"
    assert label_text(2.0) == "2"
    assert label_text(2.5) == "2.5"
    assert label_text(np.str_("setosa")) == "setosa"
