"""How the registry reads an upload: in a child process, ending with a trial prediction.

Type and bounds checks cannot cover every compiled code path of every estimator, so the
child also predicts on rows of the version's own training data: a file whose arrays send
scikit-learn's compiled code out of bounds crashes the child, not the registry, and is
refused before any worker loads it.
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
from pydantic import ValidationError

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
from shared.sandbox import SandboxFailure, SandboxLimits, run_limited
from shared.signature import InputSignature

FeatureRow = Mapping[str, float | int | str | bool | None]
MAX_TRIAL_ROWS = 256
TRIAL_BATCH_ROWS = 2048


class InspectionFailed(ModelFileError):
    """The isolated inspection ended without an answer: a limit was hit or it crashed."""


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
) -> ArtifactInfo:
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
    return _read_answer(answer)


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
        if options["trial"] is not None:
            _try_predicting(estimator, info, options["trial"])
        del estimator  # so the sandbox's collection frees it before answering
    except UnsafeArtifact as unsafe:
        return json.dumps({"error": "unsafe", "types": unsafe.types}).encode()
    except ModelFileError as error:
        kind = "content" if isinstance(error, UnsafeContent) else "malformed"
        return json.dumps({"error": kind, "message": str(error)}).encode()
    return json.dumps({"info": info.model_dump()}).encode()


def _try_predicting(estimator: Any, info: ArtifactInfo, trial: dict[str, Any]) -> None:
    signature = InputSignature.model_validate(trial["signature"])
    if check_compatible(info, signature):
        return  # the registry reports why the two do not fit; predicting proves nothing
    distinct = signature.to_matrix(trial["rows"])
    if not len(distinct):
        return
    # As many rows as a worker's largest batch, so memory and time are tried at that size.
    matrix = distinct[np.arange(TRIAL_BATCH_ROWS) % len(distinct)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            estimator.predict(matrix)
            if info.estimator_type == "classifier" and hasattr(estimator, "predict_proba"):
                estimator.predict_proba(matrix)
        except MemoryError:
            raise
        except Exception as exc:
            raise MalformedArtifact(
                f"the model cannot predict rows of its own training data: {describe_error(exc)}"
            ) from None


def _read_answer(answer: bytes) -> ArtifactInfo:
    """Parse the child's answer as untrusted input: anything unexpected is a failure."""
    try:
        parsed = json.loads(answer)
        if "info" in parsed:
            return ArtifactInfo.model_validate(parsed["info"])
        kind = parsed["error"]
        types = [str(name)[:200] for name in list(parsed.get("types", []))[:50]]
        message = str(parsed.get("message", ""))[:MAX_MESSAGE_CHARS]
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError):
        raise InspectionFailed("the model file inspection gave an unreadable answer") from None
    if kind == "unsafe":
        raise UnsafeArtifact(types)
    if kind == "content":
        raise UnsafeContent(message)
    raise MalformedArtifact(message)
