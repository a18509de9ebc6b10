"""How the registry reads an upload: in a child process, ending with a trial prediction.

Type and bounds checks cannot cover every compiled code path of every estimator, so the
child also predicts on rows of the version's own training data: a file whose arrays send
scikit-learn's compiled code out of bounds crashes the child, not the registry, and is
refused before any worker loads it. What it predicted there comes back as a small JSON
summary: the version's reference predictions, which drift is measured against.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import TypeAdapter, ValidationError

from shared.artifact_archive import ArchiveLimits
from shared.model_files import (
    MAX_MESSAGE_CHARS,
    ArtifactInfo,
    MalformedArtifact,
    ModelFileError,
    UnsafeArtifact,
    UnsafeContent,
    check_compatible,
    describe_error,
    load_and_describe,
)
from shared.profile import (
    PredictionProfile,
    class_prediction_profile,
    score_prediction_profile,
)
from shared.sandbox import SandboxFailure, SandboxLimits, run_limited
from shared.signature import InputSignature

FeatureRow = Mapping[str, float | int | str | bool | None]
TRIAL_BATCH_ROWS = 2048
MAX_TRIAL_ROWS = TRIAL_BATCH_ROWS
"""Distinct training rows tried: all of them feed the reference predictions."""
MAX_PREDICTION_SUMMARY_BYTES = 1024 * 1024
_PREDICTION_PROFILE: TypeAdapter[PredictionProfile] = TypeAdapter(PredictionProfile)


class InspectionFailed(ModelFileError):
    """The isolated inspection ended without an answer: a limit was hit or it crashed."""


@dataclass(frozen=True)
class Inspection:
    """What the isolated inspection found: the file's description and, when trial rows were
    predicted, a summary of those predictions."""

    info: ArtifactInfo
    predictions: PredictionProfile | None = None


@dataclass(frozen=True)
class TrialInput:
    """Rows the model must be able to predict, shaped by the signature they came with."""

    signature: InputSignature
    rows: Sequence[FeatureRow]


def trial_rows(
    rows: Iterable[FeatureRow], count: int, limit: int = MAX_TRIAL_ROWS
) -> list[FeatureRow]:
    """Up to `limit` of the `count` rows, spread evenly so every part of the data is tried."""
    step = max(count / limit, 1.0)
    chosen = {int(index * step) for index in range(min(count, limit))}
    return [row for index, row in enumerate(rows) if index in chosen]


def inspect_artifact_isolated(
    data: bytes,
    trial: TrialInput | None = None,
    *,
    limits: SandboxLimits = SandboxLimits(),
    archive_limits: ArchiveLimits = ArchiveLimits(),
    extra_trusted: Sequence[str] = (),
) -> Inspection:
    """Load and describe `data` in a child under `limits`, then predict `trial` rows there."""
    options: dict[str, Any] = {
        "extra_trusted": list(extra_trusted),
        "archive": dataclasses.asdict(archive_limits),
        "trial": None
        if trial is None
        else {"signature": trial.signature.model_dump(mode="json"), "rows": list(trial.rows)},
    }
    header = json.dumps(options).encode()
    payload = struct.pack(">I", len(header)) + header + data
    try:
        answer = run_limited(_inspect_in_child, payload, limits, preload=[__name__])
    except SandboxFailure as failure:
        raise InspectionFailed(f"inspecting the model file failed: {failure}") from None
    return _read_answer(answer, 0 if trial is None else min(len(trial.rows), TRIAL_BATCH_ROWS))


def _inspect_in_child(payload: bytes) -> bytes:
    """The child's side: inspect, try predicting, and answer in JSON (never a pickle)."""
    (length,) = struct.unpack(">I", payload[:4])
    options = json.loads(payload[4 : 4 + length])
    try:
        estimator, info = load_and_describe(
            payload[4 + length :],
            extra_trusted=options["extra_trusted"],
            archive_limits=ArchiveLimits(**options["archive"]),
        )
        predictions = None
        if options["trial"] is not None:
            predictions = _try_predicting(estimator, info, options["trial"])
        del estimator  # so the sandbox's collection frees it before answering
    except UnsafeArtifact as unsafe:
        return json.dumps({"error": "unsafe", "types": unsafe.types}).encode()
    except ModelFileError as error:
        kind = "content" if isinstance(error, UnsafeContent) else "malformed"
        return json.dumps({"error": kind, "message": str(error)}).encode()
    summary = None if predictions is None else predictions.model_dump(mode="json")
    return json.dumps({"info": info.model_dump(), "predictions": summary}).encode()


def _try_predicting(
    estimator: Any, info: ArtifactInfo, trial: dict[str, Any]
) -> PredictionProfile | None:
    signature = InputSignature.model_validate(trial["signature"])
    if check_compatible(info, signature):
        return None  # the registry reports why the two do not fit; predicting proves nothing
    distinct = signature.to_matrix(trial["rows"][:TRIAL_BATCH_ROWS])
    if not len(distinct):
        return None
    # As many rows as a worker's largest batch, so memory and time are tried at that size;
    # the first len(distinct) rows are the distinct ones, each once.
    matrix = distinct[np.arange(TRIAL_BATCH_ROWS) % len(distinct)]
    probabilities = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            predicted = np.asarray(estimator.predict(matrix))
            if info.estimator_type == "classifier" and hasattr(estimator, "predict_proba"):
                probabilities = estimator.predict_proba(matrix)
        except MemoryError:
            raise
        except Exception as exc:
            raise MalformedArtifact(
                f"the model cannot predict rows of its own training data: {describe_error(exc)}"
            ) from None
    if predicted.shape[:1] != (TRIAL_BATCH_ROWS,):
        count = len(predicted) if predicted.ndim else 1
        raise MalformedArtifact(
            f"the model gave {count} predictions for {TRIAL_BATCH_ROWS} rows of its training data"
        )
    rows = len(distinct)
    return _summarise(info, predicted[:rows], _usable(probabilities, rows))


def _usable(probabilities: object, rows: int) -> NDArray[np.float64] | None:
    """The first `rows` rows of a finite rows x classes matrix of probabilities, else None:
    confidence is left out of the summary rather than guessed."""
    if probabilities is None:
        return None
    try:
        matrix = np.asarray(probabilities, dtype=np.float64)
    except (ValueError, TypeError):
        return None  # ragged (one matrix per output) or not numbers
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        return None
    head = matrix[:rows]
    if len(head) != rows or not np.isfinite(head).all():
        return None
    if head.min() < 0.0 or head.max() > 1.0:
        return None
    return head


def _summarise(
    info: ArtifactInfo, predicted: NDArray[Any], probabilities: NDArray[Any] | None
) -> PredictionProfile | None:
    """The child's JSON-able summary of what the model predicted on its training rows."""
    if info.estimator_type == "regressor" and predicted.ndim == 2 and predicted.shape[1] == 1:
        predicted = predicted[:, 0]
    if predicted.ndim != 1:
        return None  # several outputs per row: no single prediction to profile
    try:
        if info.estimator_type == "regressor":
            return score_prediction_profile(predicted.astype(np.float64).tolist())
        profile = class_prediction_profile(predicted.tolist(), probabilities)
    except (ValueError, TypeError) as error:
        raise MalformedArtifact(
            "the model's predictions on its own training data cannot be summarised: "
            + describe_error(error)
        ) from None
    unknown = sorted(set(profile.frequencies) - set(info.classes or ()))
    if unknown:
        raise MalformedArtifact(
            f"the model predicts labels that are not among its classes: {unknown[:5]}"
        )
    return profile


def _read_answer(answer: bytes, tried_rows: int) -> Inspection:
    """Parse the child's answer as untrusted input: anything unexpected is a failure."""
    try:
        parsed = json.loads(answer)
        if "info" in parsed:
            info = ArtifactInfo.model_validate(parsed["info"])
            predictions = _read_predictions(parsed.get("predictions"), info, tried_rows)
            return Inspection(info=info, predictions=predictions)
        kind = parsed["error"]
        types = [str(name)[:200] for name in list(parsed.get("types", []))[:50]]
        message = str(parsed.get("message", ""))[:MAX_MESSAGE_CHARS]
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError, RecursionError):
        raise InspectionFailed("the model file inspection gave an unreadable answer") from None
    if kind == "unsafe":
        raise UnsafeArtifact(types)
    if kind == "content":
        raise UnsafeContent(message)
    raise MalformedArtifact(message)


def _read_predictions(
    summary: object, info: ArtifactInfo, tried_rows: int
) -> PredictionProfile | None:
    """The child's prediction summary, believed only if bounded and consistent with `info`
    and with the rows it was given."""
    if summary is None:
        return None
    if len(json.dumps(summary)) > MAX_PREDICTION_SUMMARY_BYTES:
        raise ValueError("the prediction summary is too large")
    profile = _PREDICTION_PROFILE.validate_python(summary)
    if profile.kind != ("classes" if info.estimator_type == "classifier" else "scores"):
        raise ValueError("the prediction summary does not fit the estimator type")
    if profile.kind == "classes" and not set(profile.frequencies) <= set(info.classes or ()):
        raise ValueError("the prediction summary names labels that are not classes")
    if profile.rows != tried_rows:
        raise ValueError("the prediction summary does not cover the rows that were tried")
    return profile
