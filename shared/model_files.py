"""Model files in the skops format, loaded only if every type in them is on a reviewed list.

Pickle and joblib run arbitrary code on load, so uploads use skops, which rebuilds objects
from a JSON schema and reports the types it would import beyond its own safe set. Those are
accepted only if listed in shared.trusted_types (or named by the operator); the zip is
checked before skops reads it, and trees are bounds-checked after. The registry inspects
uploads in a child process with limits (shared.artifact_inspection).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import skops.io as sio
from pydantic import BaseModel, ConfigDict
from sklearn.base import is_classifier, is_regressor
from sklearn.utils.validation import check_is_fitted

from shared.artifact_archive import ArchiveLimits, ArchiveRefused, check_archive
from shared.model_structure import InvalidModelStructure, check_model_structure
from shared.signature import InputSignature, label_text
from shared.trusted_types import refused_types

MAX_MESSAGE_CHARS = 2000


class ModelFileError(ValueError):
    """A model file cannot be accepted or loaded."""


class MalformedArtifact(ModelFileError):
    """The bytes are not a loadable skops file holding a fitted scikit-learn predictor."""


class UnsafeArtifact(ModelFileError):
    """The file names types that loading would import and that are not trusted."""

    def __init__(self, types: Sequence[str]) -> None:
        self.types = sorted(types)
        super().__init__("the model file contains untrusted types: " + ", ".join(self.types))


class UnsafeContent(ModelFileError):
    """The zip breaks a limit or carries extra members, or the model's arrays are unsafe."""


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


def inspect_artifact(
    data: bytes,
    *,
    extra_trusted: Sequence[str] = (),
    archive_limits: ArchiveLimits = ArchiveLimits(),
) -> ArtifactInfo:
    """Load an uploaded file under the trust rules and describe the predictor in it."""
    return load_and_describe(data, extra_trusted=extra_trusted, archive_limits=archive_limits)[1]


def load_and_describe(
    data: bytes,
    *,
    extra_trusted: Sequence[str] = (),
    archive_limits: ArchiveLimits = ArchiveLimits(),
) -> tuple[Any, ArtifactInfo]:
    """The predictor in an uploaded file, loaded under the trust rules, and its description."""
    estimator = _load_trusted(data, extra_trusted, archive_limits)
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
    return estimator, ArtifactInfo(
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
    return _load_trusted(data, extra_trusted, ArchiveLimits())


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


def _load_trusted(data: bytes, extra_trusted: Sequence[str], limits: ArchiveLimits) -> Any:
    try:
        check_archive(data, limits)
    except ArchiveRefused as bad_archive:
        raise UnsafeContent(str(bad_archive)) from None
    with _malformed_on_error("not a skops model file"):
        untrusted = sio.get_untrusted_types(data=data)
    refused = refused_types(untrusted, extra_trusted)
    if refused:
        raise UnsafeArtifact(refused)
    with _malformed_on_error("the skops model file cannot be loaded"):
        loaded = sio.loads(data, trusted=untrusted)
    try:
        check_model_structure(loaded)
    except InvalidModelStructure as invalid:
        raise UnsafeContent(f"the model's internal arrays are unsafe: {invalid}") from None
    return loaded


@contextmanager
def _malformed_on_error(what: str) -> Iterator[None]:
    """Errors while reading the file describe a malformed file; running out of memory does
    not, so the isolated inspection can report it as the limit it hit."""
    try:
        yield
    except MemoryError:
        raise
    except Exception as exc:
        raise MalformedArtifact(f"{what}: {describe_error(exc)}") from None


def _name_mismatch(model_names: list[str], signature_names: list[str]) -> str:
    if sorted(model_names) == sorted(signature_names):
        return "the model's feature names are in a different order than the signature's"
    differences = []
    if missing := [name for name in signature_names if name not in model_names]:
        differences.append(f"the model was not trained on {missing}")
    if extra := [name for name in model_names if name not in signature_names]:
        differences.append(f"the signature lacks {extra}")
    return "feature names differ: " + "; ".join(differences or ["duplicate names"])


def describe_error(exc: Exception) -> str:
    text = str(exc).strip()[:MAX_MESSAGE_CHARS]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
