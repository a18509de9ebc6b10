"""Kafka records <-> typed messages for the workers, with as little work per record as possible.

Records become PredictionRequests only here (through the shared codec); unreadable ones
become dead letters and, when the caller can still be identified, an error prediction.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from services.inference.domain.answers import Answer, AnswerError, Classified, Output
from shared.callback_seal import seal_callback
from shared.contracts import Callback, DeadLetter, ErrorCode, PredictionRequest
from shared.contracts.base import ModelName, RequestId, VersionNumber
from shared.kafka.codec import (
    KEPT_DEAD_LETTER_VALUE_BYTES,
    ConsumedRecord,
    OutgoingRecord,
    UndecodableMessage,
    dead_letter_for_record,
    decode,
    encode,
)
from shared.kafka.headers import CONTENT_TYPE, SPEC_VERSION, TRACEPARENT, Headers
from shared.topics import DEAD_LETTERS, PREDICTIONS, REQUESTS

SERVICE = "inference"
SOURCE = f"/modelbus/{SERVICE}"
UNKNOWN_MODEL_NAME = "unknown"
"""Prediction.model is required; an unreadable request whose model cannot be recovered
reports this name."""

_CE_TYPE = "ce_type"
_REQUEST_TYPE = REQUESTS.event_type.encode()
_REQUEST_ID: TypeAdapter[str] = TypeAdapter(RequestId)
_MODEL_NAME: TypeAdapter[str] = TypeAdapter(ModelName)
_VERSION: TypeAdapter[int] = TypeAdapter(VersionNumber)


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """A record no contract version can read: its dead letter and, if possible, an answer."""

    key: bytes | None
    dead_letter: DeadLetter
    answer: Answer | None


@dataclass(slots=True)
class DecodedBatch:
    """Requests in consumption order with their trace context, and the unreadable records."""

    requests: list[PredictionRequest] = field(default_factory=list)
    traceparents: list[bytes | None] = field(default_factory=list)
    unreadable: list[UnreadableRecord] = field(default_factory=list)


def decode_request(
    value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> tuple[PredictionRequest, bytes | None]:
    """The request and its traceparent, in one pass over the headers.

    The shared codec decodes it; when ce_type is exactly ours the headers need no
    further checks, so the codec is spared parsing them again.
    """
    traceparent: bytes | None = None
    fast = False
    for name, raw in headers:
        if name == _CE_TYPE:
            fast = raw == _REQUEST_TYPE
        elif name == TRACEPARENT:
            traceparent = raw
    if fast:
        return decode(REQUESTS, value), traceparent
    return decode(REQUESTS, value, headers), traceparent


def decode_batch(records: Iterable[ConsumedRecord], *, now: datetime) -> DecodedBatch:
    batch = DecodedBatch()
    requests, traceparents = batch.requests, batch.traceparents
    for record in records:
        try:
            request, traceparent = decode_request(record.value, record.headers)
        except UndecodableMessage as error:
            batch.unreadable.append(_unreadable(record, error, now))
            continue
        requests.append(request)
        traceparents.append(traceparent)
    return batch


def _unreadable(
    record: ConsumedRecord, error: UndecodableMessage, now: datetime
) -> UnreadableRecord:
    dead_letter = dead_letter_for_record(record, error, service=SERVICE)
    return UnreadableRecord(record.key, dead_letter, recover_error_answer(record.value, error, now))


def _valid(adapter: TypeAdapter[Any], value: Any) -> Any:
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError:
        return None


def recover_error_answer(
    value: bytes | None, error: UndecodableMessage, now: datetime
) -> Answer | None:
    """An `undecodable` error prediction if the JSON still names a usable request id.

    Whatever else can be read (model, version, callback, routing key) is kept, so the
    caller's webhook still fires; otherwise placeholders fill the required fields.
    """
    if value is None:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    request_id = _valid(_REQUEST_ID, data.get("request_id"))
    if request_id is None:
        return None
    callback_url = None
    if isinstance(data.get("callback"), dict):
        try:
            callback_url = str(Callback.model_validate(data["callback"]).url)
        except ValidationError:
            callback_url = None
    routing_key = data.get("routing_key")
    return Answer(
        request_id=request_id,
        model=_valid(_MODEL_NAME, data.get("model")) or UNKNOWN_MODEL_NAME,
        version=_valid(_VERSION, data.get("version")) or 1,
        variant="production",
        output=None,
        error=AnswerError(ErrorCode.UNDECODABLE, f"{error.code}: {error.message}"),
        latency_ms=0.0,
        routing_key=routing_key if isinstance(routing_key, str) and routing_key else None,
        callback_url=callback_url,
        created_at=now,
    )


def prediction_document(answer: Answer, *, seal_key: bytes | None = None) -> dict[str, Any]:
    """The answer in the `predictions` contract's shape (see shared/contracts/predictions.py).

    With `seal_key`, a callback carries the seal that tells delivery a worker served it.
    """
    error = answer.error
    callback_url = answer.callback_url
    seal = (
        seal_callback(seal_key, answer.request_id, callback_url)
        if seal_key is not None and callback_url is not None
        else None
    )
    return {
        "request_id": answer.request_id,
        "model": answer.model,
        "version": answer.version,
        "variant": answer.variant,
        "status": "ok" if error is None else "error",
        "output": _output_document(answer.output),
        "error": None if error is None else {"code": error.code, "message": error.message},
        "latency_ms": answer.latency_ms,
        "routing_key": answer.routing_key,
        "callback": None if callback_url is None else {"url": callback_url},
        "callback_seal": seal,
        "created_at": answer.created_at,
    }


def _output_document(output: Output | None) -> dict[str, Any] | None:
    if output is None:
        return None
    if isinstance(output, Classified):
        return {"label": output.label, "probabilities": output.probabilities}
    return {"value": output.value}


class PredictionEncoder:
    """Answers as `predictions` records keyed like their requests, with CloudEvents and
    trace headers.

    The payload is written straight from the answer with orjson; the constant headers
    are built once; `ce_id` is a per-process random prefix plus a counter, unique
    without a UUID per record.
    """

    def __init__(self, *, topic: str, callback_seal_key: bytes | None = None) -> None:
        self.topic = topic
        self._seal_key = callback_seal_key
        self._constant: Headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_source", SOURCE.encode()),
            ("ce_type", PREDICTIONS.event_type.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        self._id_prefix = secrets.token_hex(8) + "-"
        self._ids = itertools.count()

    def encode(self, answer: Answer, *, time: bytes, traceparent: bytes) -> OutgoingRecord:
        key = answer.partition_key.encode()
        headers = [
            *self._constant,
            ("ce_id", f"{self._id_prefix}{next(self._ids):x}".encode()),
            ("ce_time", time),
            ("ce_subject", key),
            (TRACEPARENT, traceparent),
        ]
        value = orjson.dumps(
            prediction_document(answer, seal_key=self._seal_key), option=orjson.OPT_UTC_Z
        )
        return OutgoingRecord(self.topic, key, value, headers)


def dead_letter_record(unreadable: UnreadableRecord, *, topic: str) -> OutgoingRecord:
    """The dead letter, keyed by the original key bytes (the payload's copy may be lossy)."""
    record = encode(DEAD_LETTERS, unreadable.dead_letter, key=None, source=SOURCE, topic=topic)
    return replace(record, key=unreadable.key)


MAX_DEAD_LETTER_VALUE_CHARS = KEPT_DEAD_LETTER_VALUE_BYTES * 4 // 3
MAX_ERROR_MESSAGE_CHARS = 4 * 1024


class OversizedRecords:
    """Small stand-ins for outputs over the producer's size limit, which no retry would
    ever get through: an error prediction (`too_large`) for an answer, a truncated copy
    for a dead letter. Only records that failed to send come here."""

    def __init__(self, *, predictions_topic: str, dead_letters_topic: str, limit: int) -> None:
        self._predictions = predictions_topic
        self._dead_letters = dead_letters_topic
        self._limit = limit

    def __call__(self, record: OutgoingRecord) -> OutgoingRecord | None:
        try:
            document = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(document, dict):
            return None
        size = len(record.value)
        if record.topic == self._predictions:
            document["status"] = "error"
            document["output"] = None
            document["error"] = {
                "code": ErrorCode.TOO_LARGE,
                "message": f"the answer is {size} bytes, over the {self._limit}-byte limit "
                "of a Kafka record",
            }
        elif record.topic == self._dead_letters:
            value = document.get("value")
            if isinstance(value, str) and len(value) > MAX_DEAD_LETTER_VALUE_CHARS:
                document["value"] = value[:MAX_DEAD_LETTER_VALUE_CHARS]
            message = str(document.get("error_message", ""))
            document["error_message"] = (
                _truncate(message, MAX_ERROR_MESSAGE_CHARS)
                + f" (dead letter truncated from {size} bytes: value is the first "
                f"{MAX_DEAD_LETTER_VALUE_CHARS} base64 characters of the original)"
            )
        else:
            return None
        value = orjson.dumps(document)
        if len(value) >= size:
            return None
        return replace(record, value=value)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
