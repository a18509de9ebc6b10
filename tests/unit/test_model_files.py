"""skops model files: trust rules, integrity and compatibility with a signature."""

import builtins
import csv
import io
import os
import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    VotingClassifier,
)
from sklearn.gaussian_process import GaussianProcessClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC, LinearSVC

from shared.artifact_archive import ArchiveLimits
from shared.model_files import (
    ArtifactInfo,
    ArtifactIntegrityError,
    MalformedArtifact,
    ModelFileError,
    UnsafeArtifact,
    UnsafeContent,
    check_compatible,
    dump_model,
    inspect_artifact,
    load_model,
    sha256_hex,
)
from shared.signature import FeatureSpec, InputSignature, infer_signature
from shared.tabular import parse_csv
from shared.trusted_types import SUPPORT_TYPES
from tests.support.hostile_models import (
    boosting_with_extra_tree_columns,
    call_on_load,
    forest_tree_without_width,
    histogram_boosting_without_width,
    kd_tree_without_leaves,
    mahalanobis_matrix_smaller_than_the_data,
    neighbours_label_outside_classes,
    npz_unpickling_attack,
    sparse_coefficients_outside_their_shape,
    sparse_matrix_with_a_hidden_member,
    stacking_calling_another_method,
    svc_with_overstated_support_count,
    tree_with_child_outside,
    with_bytes_attribute,
    with_extra_member,
    zip_bomb,
)


class ConstantRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """A custom estimator: its class lives outside the trusted packages."""

    def fit(self, features: NDArray[Any], target: NDArray[Any]) -> "ConstantRegressor":
        self.value_ = float(np.mean(target))
        self.n_features_in_ = features.shape[1]
        return self

    def predict(self, features: NDArray[Any]) -> NDArray[Any]:
        return np.full(len(features), self.value_)


def double(features: NDArray[Any]) -> NDArray[Any]:
    return features * 2


def _iris_model() -> LogisticRegression:
    features, target = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(features, target)


def test_inspect_a_classifier() -> None:
    data = dump_model(_iris_model())

    info = inspect_artifact(data)

    assert info == ArtifactInfo(
        estimator_type="classifier",
        n_features_in=4,
        feature_names_in=None,
        classes=["0", "1", "2"],
        sha256=sha256_hex(data),
        size_bytes=len(data),
    )


def test_inspect_a_regressor_and_string_labels() -> None:
    features, target = load_diabetes(return_X_y=True)
    regressor = inspect_artifact(dump_model(LinearRegression().fit(features, target)))
    cancer = load_breast_cancer()
    labels = np.array(cancer.target_names)[cancer.target]
    scaled = make_pipeline(StandardScaler(), LogisticRegression()).fit(cancer.data, labels)
    classifier = inspect_artifact(dump_model(scaled))

    assert (regressor.estimator_type, regressor.n_features_in, regressor.classes) == (
        "regressor",
        10,
        None,
    )
    assert classifier.classes == ["benign", "malignant"]
    assert classifier.n_features_in == 30


def test_feature_names_are_reported() -> None:
    model = _iris_model()
    model.feature_names_in_ = np.array(["sl", "sw", "pl", "pw"], dtype=object)

    info = inspect_artifact(dump_model(model))

    assert info.feature_names_in == ["sl", "sw", "pl", "pw"]


def test_loaded_model_predicts_like_the_original() -> None:
    model = _iris_model()
    data = dump_model(model)
    features, _ = load_iris(return_X_y=True)

    loaded = load_model(data, expected_sha256=sha256_hex(data).upper())

    assert np.array_equal(loaded.predict_proba(features), model.predict_proba(features))


def test_sklearn_classes_outside_skops_defaults_are_trusted() -> None:
    features, target = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(features, target)
    log_pipeline = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(max_iter=500))
    log_pipeline.fit(features, target)
    forest_file = dump_model(forest)

    assert "sklearn.tree._tree.Tree" in skops.io.get_untrusted_types(data=forest_file)
    assert inspect_artifact(forest_file).classes == ["0", "1", "2"]
    assert inspect_artifact(dump_model(log_pipeline)).estimator_type == "classifier"


def test_custom_estimator_class_is_unsafe_unless_trusted_explicitly() -> None:
    features, target = load_diabetes(return_X_y=True)
    data = dump_model(ConstantRegressor().fit(features, target))
    name = f"{ConstantRegressor.__module__}.ConstantRegressor"

    with pytest.raises(UnsafeArtifact) as refused:
        inspect_artifact(data)

    assert refused.value.types == [name]
    assert name in str(refused.value)
    assert inspect_artifact(data, extra_trusted=[name]).estimator_type == "regressor"
    with pytest.raises(UnsafeArtifact):
        load_model(data, expected_sha256=sha256_hex(data))


def test_function_from_outside_the_trusted_packages_is_unsafe() -> None:
    features, target = load_iris(return_X_y=True)
    pipeline = make_pipeline(FunctionTransformer(double), LogisticRegression(max_iter=500))
    data = dump_model(pipeline.fit(features, target))

    with pytest.raises(UnsafeArtifact, match=r"\.double"):
        inspect_artifact(data)


def test_code_execution_through_builtins_is_refused() -> None:
    data = call_on_load("builtins", "exec", "import builtins; builtins.modelbus_pwned = True")
    try:
        with pytest.raises(UnsafeArtifact, match=r"builtins\.exec"):
            inspect_artifact(data)
        with pytest.raises(UnsafeArtifact, match=r"builtins\.exec"):
            load_model(data, expected_sha256=sha256_hex(data))
        assert not hasattr(builtins, "modelbus_pwned")
    finally:
        if hasattr(builtins, "modelbus_pwned"):
            delattr(builtins, "modelbus_pwned")


@pytest.mark.parametrize(
    ("module", "name", "argument"),
    [
        ("builtins", "eval", "1 + 1"),
        ("builtins", "open", "does-not-exist.txt"),
        ("numpy.testing._private.utils", "runstring", "x = 1"),
        ("numpy", "memmap", "does-not-exist.bin"),
        ("numpy.lib.npyio", "DataSource", os.curdir),
        ("numpy", "savetxt", "does-not-exist.txt"),
    ],
)
def test_trusted_packages_grant_no_functions_or_file_classes(
    module: str, name: str, argument: str
) -> None:
    with pytest.raises(UnsafeArtifact, match=re.escape(f"{module}.{name}")):
        inspect_artifact(call_on_load(module, name, argument))


def test_npz_unpickling_through_trusted_numpy_classes_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    data = npz_unpickling_attack(tmp_path, marker)

    with pytest.raises(UnsafeArtifact) as refused:
        inspect_artifact(data)
    with pytest.raises(UnsafeArtifact):
        load_model(data, expected_sha256=sha256_hex(data))

    assert refused.value.types == [
        "numpy.lib._npyio_impl.BagObj",
        "numpy.lib._npyio_impl.NpzFile",
    ]
    assert not marker.exists()


def test_no_module_prefix_is_trusted_only_listed_types() -> None:
    assert all(name.count(".") >= 2 for name in SUPPORT_TYPES)
    for name in ("numpy.lib._npyio_impl.NpzFile", "scipy.io.loadmat", "sklearn.utils.Bunch2"):
        with pytest.raises(UnsafeArtifact, match=re.escape(name)):
            inspect_artifact(call_on_load(*name.rsplit(".", 1), "x"))


@pytest.mark.parametrize(
    "model",
    [
        RandomForestClassifier(n_estimators=3, random_state=0),
        GradientBoostingClassifier(n_estimators=3, random_state=0),
        KNeighborsClassifier(n_neighbors=3),
        CalibratedClassifierCV(LinearSVC(), cv=3),
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0),
        GaussianProcessClassifier(random_state=0),
        VotingClassifier([("lr", LogisticRegression(max_iter=500)), ("nb", GaussianNB())]),
        make_pipeline(StandardScaler(), SVC()),
    ],
    ids=lambda model: type(model).__name__,
)
def test_common_classifiers_load_under_the_reviewed_list(model: Any) -> None:
    features, target = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(features, target)
    data = dump_model(model)

    loaded = load_model(data, expected_sha256=sha256_hex(data))

    assert np.array_equal(loaded.predict(features), model.predict(features))


def test_unreferenced_zip_members_are_refused() -> None:
    data = with_extra_member(dump_model(_iris_model()), "stash.npy")

    with pytest.raises(UnsafeContent, match=re.escape("does not reference: 'stash.npy'")):
        inspect_artifact(data)
    with pytest.raises(UnsafeContent):
        load_model(data, expected_sha256=sha256_hex(data))


def test_decompression_bomb_is_refused_before_inflating() -> None:
    data = zip_bomb(dump_model(_iris_model()), 64 * 1024 * 1024)
    limits = ArchiveLimits(max_uncompressed_bytes=32 * 1024 * 1024)

    with pytest.raises(UnsafeContent, match=r"declares \d+ bytes uncompressed"):
        inspect_artifact(data, archive_limits=limits)
    assert len(data) < 1024 * 1024


def test_tree_pointing_outside_its_nodes_is_refused() -> None:
    data = tree_with_child_outside()

    with pytest.raises(UnsafeContent, match="child outside the tree"):
        inspect_artifact(data)
    with pytest.raises(UnsafeContent):
        load_model(data, expected_sha256=sha256_hex(data))


def test_neighbour_index_pointing_outside_its_rows_is_refused() -> None:
    features, target = load_iris(return_X_y=True)
    model = KNeighborsClassifier(algorithm="kd_tree").fit(features, target)
    state = list(model._tree.__getstate__())
    node_data = state[2].copy()
    node_data["idx_end"][0] = 10**6
    model._tree.__setstate__((*state[:2], node_data, *state[3:]))

    with pytest.raises(UnsafeContent, match="points outside its rows"):
        inspect_artifact(dump_model(model))


def test_valid_zip_with_broken_content_is_malformed() -> None:
    no_schema = io.BytesIO()
    with zipfile.ZipFile(no_schema, "w") as archive:
        archive.writestr("other.txt", "x")
    bad_json = io.BytesIO()
    with zipfile.ZipFile(bad_json, "w") as archive:
        archive.writestr("schema.json", "{not json")

    for data in (no_schema.getvalue(), bad_json.getvalue()):
        with pytest.raises(MalformedArtifact, match="not a skops model file"):
            inspect_artifact(data)


@pytest.mark.parametrize("size", [0, 1, 1000])
def test_random_bytes_are_malformed(size: int) -> None:
    data = np.random.default_rng(size).bytes(size)

    with pytest.raises(MalformedArtifact, match="not a skops model file"):
        inspect_artifact(data)


def test_truncated_file_is_malformed() -> None:
    data = dump_model(_iris_model())

    with pytest.raises(MalformedArtifact):
        inspect_artifact(data[: len(data) // 2])


def test_files_without_a_fitted_predictor_are_malformed() -> None:
    with pytest.raises(MalformedArtifact, match=r"not a scikit-learn predictor: .* dict"):
        inspect_artifact(dump_model({"weights": [1, 2]}))
    with pytest.raises(MalformedArtifact, match="not a scikit-learn predictor"):
        inspect_artifact(dump_model(StandardScaler().fit(np.eye(3))))
    with pytest.raises(MalformedArtifact, match="not fitted"):
        inspect_artifact(dump_model(LogisticRegression()))


def test_flipped_byte_fails_the_integrity_check() -> None:
    data = dump_model(_iris_model())
    corrupted = bytearray(data)
    corrupted[len(data) // 2] ^= 0x01

    with pytest.raises(ArtifactIntegrityError) as failed:
        load_model(bytes(corrupted), expected_sha256=sha256_hex(data))

    assert failed.value.expected == sha256_hex(data)
    assert failed.value.actual == sha256_hex(bytes(corrupted))
    assert sha256_hex(data) in str(failed.value)
    assert sha256_hex(bytes(corrupted)) in str(failed.value)


def test_every_error_is_a_model_file_error() -> None:
    for error in (MalformedArtifact, UnsafeArtifact, ArtifactIntegrityError):
        assert issubclass(error, ModelFileError)
    assert issubclass(ModelFileError, ValueError)


def test_sha256_hex() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _iris_csv_and_model() -> tuple[bytes, LogisticRegression]:
    iris = load_iris()
    labels = [str(iris.target_names[index]) for index in iris.target]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["sl", "sw", "pl", "pw", "species"])
    for row, label in zip(iris.data.tolist(), labels, strict=True):
        writer.writerow([*row, label])
    model = LogisticRegression(max_iter=1000).fit(iris.data, labels)
    return buffer.getvalue().encode(), model


def test_model_trained_on_the_dataset_is_compatible_with_its_signature() -> None:
    dataset, model = _iris_csv_and_model()
    signature = infer_signature(parse_csv(dataset), target="species", task="classification")

    info = inspect_artifact(dump_model(model))

    assert check_compatible(info, signature) == []


def test_incompatibilities_are_each_reported() -> None:
    dataset, model = _iris_csv_and_model()
    signature = infer_signature(parse_csv(dataset), target="species", task="classification")
    model.feature_names_in_ = np.array(["pw", "pl", "sw", "sl"], dtype=object)
    info = inspect_artifact(dump_model(model))
    three_features = signature.model_copy(update={"features": signature.features[:3]})
    other_classes = signature.model_copy(update={"classes": ["setosa", "versicolor", "rose"]})
    regression = InputSignature(features=signature.features, target="species", task="regression")

    assert check_compatible(info, signature) == [
        "the model's feature names are in a different order than the signature's"
    ]
    assert check_compatible(info, three_features) == [
        "the model expects 4 features, the signature has 3",
        "feature names differ: the signature lacks ['pw']",
    ]
    assert check_compatible(info.model_copy(update={"feature_names_in": None}), other_classes) == [
        "model classes not in the training data: ['virginica']",
        "training classes the model cannot predict: ['rose']",
    ]
    assert check_compatible(info.model_copy(update={"feature_names_in": None}), regression) == [
        "the model is a classifier, but the task is regression"
    ]


def test_renamed_features_are_reported_by_name() -> None:
    info = ArtifactInfo(
        estimator_type="regressor",
        n_features_in=2,
        feature_names_in=["a", "b"],
        classes=None,
        sha256="0" * 64,
        size_bytes=1,
    )
    signature = InputSignature(
        features=[FeatureSpec(name="a", kind="boolean"), FeatureSpec(name="c", kind="boolean")],
        target="y",
        task="regression",
    )

    assert check_compatible(info, signature) == [
        "feature names differ: the model was not trained on ['c']; the signature lacks ['b']"
    ]


def test_boosted_trees_load_and_a_child_outside_is_refused() -> None:
    features, target = load_iris(return_X_y=True)
    model = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(features, target)
    data = dump_model(model)

    loaded = load_model(data, expected_sha256=sha256_hex(data))
    assert np.array_equal(loaded.predict(features), model.predict(features))

    model._predictors[1][0].nodes["right"][0] = 10**6
    with pytest.raises(UnsafeContent, match="boosted tree points at a child outside"):
        inspect_artifact(dump_model(model))
    model._predictors[1][0].nodes["right"][0] = 0
    model._predictors[1][0].nodes["is_leaf"][0] = 1
    model._predictors[2][0].nodes["feature_idx"][0] = 4
    with pytest.raises(UnsafeContent, match="splits on a feature outside the model's 4"):
        inspect_artifact(dump_model(model))


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (sparse_coefficients_outside_their_shape, "a sparse matrix is inconsistent"),
        (forest_tree_without_width, "a tree does not record how many features it takes"),
        (boosting_with_extra_tree_columns, "trees do not form its iterations by classes"),
        (histogram_boosting_without_width, "does not record how many features it takes"),
        (mahalanobis_matrix_smaller_than_the_data, "Mahalanobis metric's matrix"),
        (kd_tree_without_leaves, "inner nodes on its last level"),
        (svc_with_overstated_support_count, "support vector model's arrays do not fit"),
        (neighbours_label_outside_classes, "label is not one of its classes"),
        (stacking_calling_another_method, "names a method it may not call"),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_arrays_that_send_compiled_predict_code_astray_are_refused(
    build: Callable[[], bytes], reason: str
) -> None:
    data = build()

    with pytest.raises(UnsafeContent, match=re.escape(reason)):
        inspect_artifact(data)
    with pytest.raises(UnsafeContent, match=re.escape(reason)):
        load_model(data, expected_sha256=sha256_hex(data))


def test_a_model_file_is_nothing_but_its_zip() -> None:
    data = dump_model(_iris_model())
    commented = io.BytesIO(data)
    with zipfile.ZipFile(commented, "a") as archive:
        archive.comment = b"trailing"

    for polyglot in (b"\x80\x04payload." + data, data + b"trailing", commented.getvalue()):
        with pytest.raises(UnsafeContent, match="data before or after its zip archive"):
            inspect_artifact(polyglot)


def test_bytes_attributes_and_hidden_sparse_members_are_refused() -> None:
    with pytest.raises(UnsafeContent, match="bytes objects are not accepted"):
        inspect_artifact(with_bytes_attribute(dump_model(_iris_model()), b"\x80\x04anything"))
    with pytest.raises(UnsafeContent, match="holds unexpected members"):
        inspect_artifact(sparse_matrix_with_a_hidden_member())
