"""Kafka side of the join: records of three topics become one `Batch`, and results records.

One consumer group reads `requests`, `predictions` and `feedback` together. The three
topics are keyed differently (routing key, routing key, request id), so no partition of
one lines up with a partition of another; the join meets them in the store instead,
which every replica shares, and needs no repartitioning.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeAlias

import orjson
from aiokafka import ConsumerRecord

from services.feedback.adapters.join_records import LabelEncoder
from services.feedback.adapters.store import dumps
from services.feedback.domain.judging import epoch, moment
from services.feedback.domain.review import margin
from services.feedback.service_layer.batch import Batch
from services.feedback.service_layer.join import Joiner, JoinResult
from shared.contracts import DeadLetter, Feedback, LabelledExample
from shared.contracts.base import utc_now
from shared.kafka.codec import (
    KEPT_DEAD_LETTER_VALUE_BYTES,
    OutgoingRecord,
    UndecodableMessage,
    dead_letter_for_record,
    decode,
    decode_as,
    encode,
    warn_unreadable,
)
from shared.kafka.headers import TRACEPARENT, current_trace_headers
from shared.kafka.stream_fields import (
    ClassifierFields,
    PredictionFields,
    RegressorFields,
    RequestFields,
)
from shared.signature import label_text
from shared.topics import DEAD_LETTERS, FEEDBACK, LABELS, PREDICTIONS, REQUESTS

log = logging.getLogger(__name__)
SERVICE = "feedback"
SOURCE = "/modelbus/feedback"

Record: TypeAlias = ConsumerRecord[bytes, bytes]


class TopicNames:
    """The full names of the topics the join reads and writes (with the stack's prefix)."""

    def __init__(self, topic: Callable[[str], str]) -> None:
        self.requests = topic(REQUESTS.name)
        self.predictions = topic(PREDICTIONS.name)
        self.feedback = topic(FEEDBACK.name)
        self.labels = topic(LABELS.name)
        self.dead_letters = topic(DEAD_LETTERS.name)

    @property
    def consumed(self) -> tuple[str, ...]:
        return (self.requests, self.predictions, self.feedback)


def read_batch(
    records: list[Record], topics: TopicNames, *, received_at: float
) -> tuple[Batch, list[DeadLetter]]:
    """The store's rows for readable records, and a dead letter for each unreadable one."""
    batch = Batch(received_at=received_at)
    unreadable: list[DeadLetter] = []
    seen_versions: set[tuple[str, int]] = set()
    for record in records:
        headers = record.headers or ()
        try:
            if record.topic == topics.predictions:
                fields = decode_as(PREDICTIONS, PredictionFields, record.value, headers)
                _add_prediction(batch, fields, seen_versions)
            elif record.topic == topics.requests:
                _add_request(batch, decode_as(REQUESTS, RequestFields, record.value, headers))
            elif record.topic == topics.feedback:
                batch.feedback.append(storable(decode(FEEDBACK, record.value, headers)))
        except UndecodableMessage as error:
            warn_unreadable(log, record, error)
            if record.topic == topics.feedback:  # others' unreadable records are their own
                unreadable.append(dead_letter_for_record(record, error, service=SERVICE))
    return batch, unreadable


def storable(feedback: Feedback) -> Feedback:
    """Feedback the store can keep as it came: the contract takes integers of any size and
    any text, the store's JSON (64-bit integers) and PostgreSQL's text (no NUL) do not."""
    for name in ("feedback_id", "source"):
        if "\x00" in getattr(feedback, name):
            raise UndecodableMessage("schema_violation", f"{name} contains a NUL character")
    label = feedback.label
    if isinstance(label, float) and not math.isfinite(label):
        raise UndecodableMessage("schema_violation", "label is not a finite number")
    _json_of(label, "label")
    return feedback


def _json_of(value: Any, what: str) -> str:
    try:
        return dumps(value)
    except TypeError as error:  # an integer past 64 bits
        raise UndecodableMessage("schema_violation", f"{what} cannot be stored: {error}") from None


def _add_request(batch: Batch, request: RequestFields) -> None:
    batch.requests.append(
        {
            "request_id": request.request_id,
            "model": request.model,
            "inputs": _json_of(request.inputs, "inputs"),
            "requested_at": epoch(request.created_at),
        }
    )


def _add_prediction(batch: Batch, prediction: PredictionFields, seen: set[tuple[str, int]]) -> None:
    output = prediction.output if prediction.status == "ok" else None
    predicted: Any = None
    if isinstance(output, ClassifierFields):
        predicted = label_text(output.label)
    elif isinstance(output, RegressorFields):
        predicted = output.value
    batch.predictions.append(
        {
            "request_id": prediction.request_id,
            "variant": prediction.variant,
            "model": prediction.model,
            "version": prediction.version,
            "predicted": dumps(predicted) if predicted is not None else None,
            "predicted_at": epoch(prediction.created_at),
        }
    )
    if isinstance(output, ClassifierFields) and prediction.variant != "shadow":
        top_margin = margin(output.probabilities)
        if top_margin is not None:
            batch.margins[prediction.request_id] = top_margin
    version = (prediction.model, prediction.version)
    if output is not None and version not in seen:
        seen.add(version)
        classes = list(output.probabilities) if isinstance(output, ClassifierFields) else None
        batch.versions.append(
            {
                "model": prediction.model,
                "version": prediction.version,
                "classes": dumps(classes) if classes is not None else None,
            }
        )


def shrink_output(record: OutgoingRecord) -> OutgoingRecord | None:
    """A stand-in for an output over Kafka's size limit: a label without its inputs (the
    store keeps them for the dataset export), a dead letter with the value cut short."""
    if record.topic.endswith(LABELS.name):
        example = LabelledExample.model_validate_json(record.value)
        return encode(
            LABELS,
            example.model_copy(update={"inputs": {}}),
            key=example.request_id,
            source=SOURCE,
            topic=record.topic,
        )
    if record.topic.endswith(DEAD_LETTERS.name):
        letter = DeadLetter.model_validate_json(record.value)
        kept = (letter.value or "")[: KEPT_DEAD_LETTER_VALUE_BYTES // 3 * 4]
        message = f"{letter.error_message[:1000]} (value truncated)"
        return encode(
            DEAD_LETTERS,
            letter.model_copy(update={"value": kept, "error_message": message}),
            key=letter.key,
            source=SOURCE,
            topic=record.topic,
        )
    return None


def feedback_dead_letter(feedback: Feedback, *, topic: str, code: str, message: str) -> DeadLetter:
    """A dead letter for feedback the join gave up on, carrying the feedback itself."""
    return DeadLetter(
        source_topic=topic,
        key=feedback.request_id,
        value=base64.b64encode(feedback.model_dump_json().encode()).decode(),
        error_code=code,
        error_message=message[:1000],
        service=SERVICE,
    )


def result_records(
    result: JoinResult,
    unreadable: list[DeadLetter],
    topics: TopicNames,
    labels: LabelEncoder,
) -> list[OutgoingRecord]:
    """What a batch publishes: its labels, and dead letters for what it refused."""
    now = time.time()
    published_at, header_time = moment(now), utc_now().isoformat().encode()
    traceparent = current_trace_headers()[TRACEPARENT].encode()
    outgoing = [
        labels.encode(
            document
            | {
                "predicted_at": moment(document["predicted_at"]),
                "labelled_at": moment(document["labelled_at"]),
                "published_at": published_at,
                "inputs": orjson.Fragment(document["inputs"]),
            },
            time=header_time,
            traceparent=traceparent,
        )
        for document in result.labels
    ]
    letters = unreadable + [
        feedback_dead_letter(
            refusal.feedback, topic=topics.feedback, code="refused", message=refusal.reason
        )
        for refusal in result.refused
    ]
    outgoing.extend(
        encode(DEAD_LETTERS, letter, key=letter.key, source=SOURCE, topic=topics.dead_letters)
        for letter in letters
    )
    return outgoing


class JoinProcess:
    """The feedback service's `process` for the shared consume loop."""

    def __init__(
        self,
        joiner: Joiner,
        topics: TopicNames,
        *,
        run: Callable[..., Any],
        on_result: Callable[[JoinResult, int], None] = lambda result, records: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._joiner = joiner
        self._topics = topics
        self._run = run
        self._on_result = on_result
        self._clock = clock
        self._labels = LabelEncoder(topic=topics.labels, source=SOURCE)

    async def __call__(self, records: list[Record]) -> list[OutgoingRecord]:
        batch, unreadable = read_batch(records, self._topics, received_at=self._clock())
        result: JoinResult = await self._run(self._joiner.record, batch)
        self._on_result(result, len(records))
        return result_records(result, unreadable, self._topics, self._labels)
