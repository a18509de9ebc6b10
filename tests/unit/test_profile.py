"""Reference profiles and the drift helpers that reuse their bins."""

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.datasets import load_diabetes, load_iris

from shared.profile import (
    QUANTILE_LEVELS,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    bin_index,
    build_profile,
    categorical_profile,
    category_fractions,
    histogram_fractions,
    numeric_profile,
    population_stability_index,
)
from shared.signature import infer_signature
from shared.tabular import InvalidDataset, TabularData, parse_csv


def _diabetes() -> TabularData:
    diabetes = load_diabetes()
    columns: dict[str, list[float | int | str | bool | None]] = {
        name: diabetes.data[:, index].tolist() for index, name in enumerate(diabetes.feature_names)
    }
    columns["progression"] = diabetes.target.tolist()
    return TabularData(columns)


def _has_non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(item) for item in value)
    return False


def test_numeric_profile_of_a_regression_dataset() -> None:
    data = _diabetes()
    signature = infer_signature(data, target="progression", task="regression")

    profile = build_profile(data, signature)

    bmi = profile.features["bmi"]
    values = np.array(data.columns["bmi"], dtype=float)
    assert isinstance(bmi, NumericProfile)
    assert profile.rows == 442
    assert (bmi.count, bmi.missing) == (442, 0)
    assert bmi.mean == pytest.approx(values.mean())
    assert bmi.std == pytest.approx(values.std())
    assert (bmi.min, bmi.max) == (values.min(), values.max())
    assert list(bmi.quantiles) == list(QUANTILE_LEVELS)
    assert bmi.quantiles["p95"] == pytest.approx(np.quantile(values, 0.95))
    assert len(bmi.bin_edges) == 9
    assert bmi.bin_edges == sorted(set(bmi.bin_edges))
    assert sum(bmi.bin_fractions) == pytest.approx(1.0)
    assert all(fraction == pytest.approx(0.1, abs=0.02) for fraction in bmi.bin_fractions)
    assert isinstance(profile.target, NumericProfile)
    assert set(profile.features) == set(signature.feature_names)


def test_profile_round_trips_through_plain_json() -> None:
    data = _diabetes()
    profile = build_profile(data, infer_signature(data, target="progression", task="regression"))

    text = profile.model_dump_json()
    parsed = json.loads(text)  # strict JSON: NaN or Infinity would not survive a round trip

    assert not _has_non_finite(parsed)
    assert "NaN" not in text
    assert "Infinity" not in text
    assert parsed["features"]["age"]["kind"] == "numeric"
    assert ReferenceProfile.model_validate_json(text) == profile


def test_classification_target_and_categorical_features() -> None:
    iris = load_iris()
    columns: dict[str, list[float | int | str | bool | None]] = {
        "petal_length": iris.data[:, 2].tolist(),
        "large": [bool(value > 4.0) for value in iris.data[:, 2]],
        "species": [str(iris.target_names[label]) for label in iris.target],
    }
    data = TabularData(columns)

    profile = build_profile(data, infer_signature(data, target="species", task="classification"))

    assert isinstance(profile.target, CategoricalProfile)
    assert profile.target.frequencies == pytest.approx(
        {"setosa": 1 / 3, "versicolor": 1 / 3, "virginica": 1 / 3}
    )
    large = profile.features["large"]
    assert isinstance(large, CategoricalProfile)
    assert set(large.frequencies) == {"false", "true"}
    assert large.frequencies["true"] == pytest.approx(np.mean(iris.data[:, 2] > 4.0))
    restored = ReferenceProfile.model_validate_json(profile.model_dump_json())
    assert isinstance(restored.features["large"], CategoricalProfile)
    assert isinstance(restored.features["petal_length"], NumericProfile)


def test_missing_values_are_counted_not_profiled() -> None:
    data = parse_csv(b"x,c,y\n1,a,1\n,b,2\n3,,3\n5,a,4\n")
    profile = build_profile(data, infer_signature(data, target="y", task="regression"))

    x = profile.features["x"]
    c = profile.features["c"]
    assert isinstance(x, NumericProfile)
    assert isinstance(c, CategoricalProfile)
    assert (x.count, x.missing, x.mean, x.min, x.max) == (3, 1, 3.0, 1.0, 5.0)
    assert (c.count, c.missing) == (3, 1)
    assert c.frequencies == pytest.approx({"a": 2 / 3, "b": 1 / 3})


def test_repeated_values_give_fewer_distinct_edges() -> None:
    constant = numeric_profile([7, 7, 7, 7])
    binary = numeric_profile([0] * 50 + [1] * 50)

    assert constant.bin_edges == [7.0]
    assert constant.bin_fractions == [0.0, 1.0]
    assert constant.std == 0.0
    assert len(binary.bin_edges) < 9
    assert binary.bin_edges == sorted(set(binary.bin_edges))
    assert sum(binary.bin_fractions) == pytest.approx(1.0)


def test_numeric_profile_needs_values() -> None:
    with pytest.raises(InvalidDataset, match="no numeric values"):
        numeric_profile([None, None])


def test_build_profile_needs_every_signature_column() -> None:
    data = parse_csv(b"x,y\n1,2\n3,4\n")
    signature = infer_signature(data, target="y", task="regression")

    with pytest.raises(InvalidDataset, match="column 'x' of the signature is not in the data"):
        build_profile(TabularData({"y": [2, 4]}), signature)


def test_bin_index_uses_half_open_bins_with_open_ends() -> None:
    edges = [1.0, 2.0, 3.0]

    assert bin_index(edges, -1e300) == 0
    assert bin_index(edges, 0.999) == 0
    assert bin_index(edges, 1.0) == 1
    assert bin_index(edges, 2.5) == 2
    assert bin_index(edges, 3.0) == 3
    assert bin_index(edges, math.inf) == 3
    with pytest.raises(ValueError, match="missing"):
        bin_index(edges, math.nan)


def test_histogram_fractions_agree_with_bin_index() -> None:
    edges = [1.0, 2.0, 3.0]
    values = [0.5, 1.0, 1.5, 2.0, 3.5, math.nan]

    fractions = histogram_fractions(edges, values)

    counts = [0, 0, 0, 0]
    for value in values[:-1]:
        counts[bin_index(edges, value)] += 1
    assert fractions == [count / 5 for count in counts]
    assert histogram_fractions(edges, []) == [0.0, 0.0, 0.0, 0.0]


def test_population_stability_index() -> None:
    same = [0.25, 0.25, 0.25, 0.25]
    shifted = [0.1, 0.2, 0.3, 0.4]
    expected_psi = sum((a - e) * math.log(a / e) for e, a in zip(same, shifted, strict=True))

    assert population_stability_index(same, same) == 0.0
    assert population_stability_index(same, shifted) == pytest.approx(expected_psi)
    assert population_stability_index([0.5, 0.5, 0.0], [0.0, 0.0, 1.0]) > 0.25
    assert math.isfinite(population_stability_index([1.0, 0.0], [0.0, 1.0]))
    with pytest.raises(ValueError, match="bin counts differ"):
        population_stability_index([0.5, 0.5], [1.0])


def test_category_fractions_put_unseen_labels_in_a_last_bucket() -> None:
    reference = categorical_profile(["a", "a", "b", True])

    expected, actual = category_fractions(reference.frequencies, ["a", "c", "c", None, True])

    assert list(reference.frequencies) == ["a", "b", "true"]
    assert expected == [0.5, 0.25, 0.25, 0.0]
    assert actual == [0.25, 0.0, 0.25, 0.5]


def test_profiles_reject_non_finite_and_inconsistent_bins() -> None:
    fields: dict[str, object] = {
        "count": 1,
        "missing": 0,
        "mean": 1.0,
        "std": 0.0,
        "min": 1.0,
        "max": 1.0,
        "quantiles": {},
        "bin_edges": [1.0],
        "bin_fractions": [0.0, 1.0],
    }
    NumericProfile.model_validate(fields)

    with pytest.raises(ValidationError):
        NumericProfile.model_validate({**fields, "mean": math.nan})
    with pytest.raises(ValidationError, match="one more entry"):
        NumericProfile.model_validate({**fields, "bin_fractions": [1.0]})
    with pytest.raises(ValidationError, match="strictly increasing"):
        NumericProfile.model_validate(
            {**fields, "bin_edges": [2.0, 1.0], "bin_fractions": [0, 0, 1]}
        )
