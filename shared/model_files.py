"""Model files in the skops format, loaded only if every type in them is trusted.

Pickle and joblib run arbitrary code on load, so uploads use skops, which rebuilds
objects from a JSON schema and reports the types it would import. skops itself trusts
plain data, numpy arrays and scikit-learn estimators; the remaining types it reports
are accepted here only if they are *classes* from scikit-learn, numpy, scipy or
builtins (e.g. `sklearn.tree._tree.Tree`), or listed in `extra_trusted`.

Functions are never trusted by prefix: skops calls a reported callable with arguments
taken from the file while loading, so trusting `builtins.exec` or a numpy helper that
runs strings as code would execute the uploader's code. Classes from test helpers and
classes that touch files (numpy.memmap, numpy's DataSource) are refused for the same
reason.
"""

from __future__ import annotations

import hashlib
import importlib
import zipfile
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import skops.io as sio
from numpy.lib import npyio
from pydantic import BaseModel, ConfigDict
from sklearn.base import is_classifier, is_regressor
from sklearn.utils.validation import check_is_fitted

from shared.signature import InputSignature, label_text

TRUSTED_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.", "scipy.", "builtins.")
_REFUSED_MODULE_PARTS = frozenset({"f2py", "distutils", "_distutils", "ctypeslib", "io"})
_REFUSED_CLASSES: tuple[type, ...] = (np.memmap, npyio.DataSource)


class ModelFileError(ValueError):
    """A model file cannot be accepted or loaded."""


class MalformedArtifact(ModelFileError):
    """The bytes are not a loadable skops file holding a fitted scikit-learn predictor."""


class UnsafeArtifact(ModelFileError):
    """The file names types that loading would import and that are not trusted."""

    def __init__(self, types: Sequence[str]) -> None:
        self.types = sorted(types)
        super().__init__("the model file contains untrusted types: " + ", ".join(self.types))


class ArtifactIntegrityError(ModelFileError):
    """The bytes are not the ones registered: corrupted or replaced in storage."""

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"model file SHA-256 is {actual}, but {expected} was registered")


class ArtifactInfo(BaseModel):
    """What the registry records about an uploaded model file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimator_type: Literal["classifier", "regressor"]
    n_features_in: int | None
    feature_names_in: list[str] | None
    classes: list[str] | None
    sha256: str
    size_bytes: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump_model(estimator: Any) -> bytes:
    """The estimator as a compressed skops file."""
    data: bytes = sio.dumps(estimator, compression=zipfile.ZIP_DEFLATED)
    return data


def inspect_artifact(data: bytes, *, extra_trusted: Sequence[str] = ()) -> ArtifactInfo:
    """Load an uploaded file under the trust rules and describe the predictor in it."""
    estimator = _load_trusted(data, extra_trusted)
    if _is_classifier(estimator):
        estimator_type: Literal["classifier", "regressor"] = "classifier"
    elif _is_regressor(estimator):
        estimator_type = "regressor"
    else:
        raise MalformedArtifact(
            f"not a scikit-learn predictor: the file holds a {type(estimator).__qualname__}"
        )
    try:
        check_is_fitted(estimator)
    except Exception as exc:
        raise MalformedArtifact(f"the estimator is not fitted: {exc}") from None
    n_features = getattr(estimator, "n_features_in_", None)
    names = getattr(estimator, "feature_names_in_", None)
    classes = getattr(estimator, "classes_", None) if estimator_type == "classifier" else None
    return ArtifactInfo(
        estimator_type=estimator_type,
        n_features_in=None if n_features is None else int(n_features),
        feature_names_in=None if names is None else [str(name) for name in names],
        classes=None if classes is None else [label_text(label) for label in classes],
        sha256=sha256_hex(data),
        size_bytes=len(data),
    )


def load_model(data: bytes, *, expected_sha256: str, extra_trusted: Sequence[str] = ()) -> Any:
    """Load a registered model file after checking it is byte-for-byte the registered one."""
    actual = sha256_hex(data)
    if actual != expected_sha256.lower():
        raise ArtifactIntegrityError(expected_sha256, actual)
    return _load_trusted(data, extra_trusted)


def check_compatible(info: ArtifactInfo, signature: InputSignature) -> list[str]:
    """Why the model cannot serve requests shaped by `signature`; empty if it can."""
    problems: list[str] = []
    names = signature.feature_names
    if info.n_features_in is not None and info.n_features_in != len(names):
        problems.append(
            f"the model expects {info.n_features_in} features, the signature has {len(names)}"
        )
    if info.feature_names_in is not None and info.feature_names_in != names:
        problems.append(_name_mismatch(info.feature_names_in, names))
    wanted = "classifier" if signature.task == "classification" else "regressor"
    if info.estimator_type != wanted:
        problems.append(f"the model is a {info.estimator_type}, but the task is {signature.task}")
    elif info.classes is not None and signature.classes is not None:
        unknown = sorted(set(info.classes) - set(signature.classes))
        unpredictable = sorted(set(signature.classes) - set(info.classes))
        if unknown:
            problems.append(f"model classes not in the training data: {unknown}")
        if unpredictable:
            problems.append(f"training classes the model cannot predict: {unpredictable}")
    return problems


def _is_classifier(estimator: object) -> bool:
    """sklearn's is_classifier, False (not an error) for objects that are not estimators."""
    try:
        return bool(is_classifier(estimator))
    except Exception:
        return False


def _is_regressor(estimator: object) -> bool:
    """sklearn's is_regressor, False (not an error) for objects that are not estimators."""
    try:
        return bool(is_regressor(estimator))
    except Exception:
        return False


def _load_trusted(data: bytes, extra_trusted: Sequence[str]) -> Any:
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise MalformedArtifact(f"not a skops model file: {_describe(exc)}") from None
    refused = [name for name in untrusted if not _is_trusted(name, extra_trusted)]
    if refused:
        raise UnsafeArtifact(refused)
    try:
        return sio.loads(data, trusted=untrusted)
    except Exception as exc:
        raise MalformedArtifact(
            f"the skops model file cannot be loaded: {_describe(exc)}"
        ) from None


def _is_trusted(name: str, extra_trusted: Sequence[str]) -> bool:
    """Whether a type skops reports as untrusted may be imported while loading."""
    if name in extra_trusted:
        return True
    if not name.startswith(TRUSTED_PREFIXES):
        return False
    module_name, _, attribute = name.rpartition(".")
    if _refused_module(module_name):
        return False
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except Exception:
        return False
    if isinstance(found, np.ufunc):
        return True
    return (
        isinstance(found, type)
        and not issubclass(found, _REFUSED_CLASSES)
        and not _refused_module(found.__module__)
    )


def _refused_module(module_name: str) -> bool:
    parts = module_name.split(".")
    return any(part in _REFUSED_MODULE_PARTS or "test" in part for part in parts)


def _name_mismatch(model_names: list[str], signature_names: list[str]) -> str:
    if sorted(model_names) == sorted(signature_names):
        return "the model's feature names are in a different order than the signature's"
    differences = []
    if missing := [name for name in signature_names if name not in model_names]:
        differences.append(f"the model was not trained on {missing}")
    if extra := [name for name in model_names if name not in signature_names]:
        differences.append(f"the signature lacks {extra}")
    return "feature names differ: " + "; ".join(differences or ["duplicate names"])


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
