"""Encode typed messages into Kafka records and decode records into typed messages."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from shared.contracts import DeadLetter, WireModel
from shared.errors import MAX_LISTED_PROBLEMS, bounded_list
from shared.kafka.headers import Headers, build_headers, parse_headers
from shared.topics import TopicSpec

T = TypeVar("T", bound=WireModel)
W = TypeVar("W", bound=BaseModel)
MAX_DEAD_LETTER_VALUE_BYTES = 512 * 1024
"""Values up to this size are kept whole in a dead letter (base64 makes them a third
bigger); a bigger one would make the dead letter too big for a Kafka record."""
KEPT_DEAD_LETTER_VALUE_BYTES = 48 * 1024
"""What is kept of a bigger value (a multiple of 3, so its base64 is a prefix of the
whole value's base64)."""


@dataclass(frozen=True)
class OutgoingRecord:
    """A record ready for a Kafka producer."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    partition: int | None = None
    """Set only where the key cannot say it: a changelog record goes to the partition of
    the input it was computed from (co-partitioned by construction)."""


class ConsumedRecord(Protocol):
    """The parts of aiokafka's ConsumerRecord the services read."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class UndecodableMessage(Exception):
    """A record no version of the contract can read; it belongs on the dead-letter topic."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(
    spec: TopicSpec[T], message: T, *, key: str | None, source: str, topic: str | None = None
) -> OutgoingRecord:
    """Serialise a message for `spec`'s topic, with CloudEvents and trace headers."""
    if not isinstance(message, spec.payload):
        carried = spec.payload.__name__
        raise TypeError(f"{spec.name} carries {carried}, not {type(message).__name__}")
    return OutgoingRecord(
        topic=topic or spec.name,
        key=key.encode() if key is not None else None,
        value=message.model_dump_json(exclude_none=False).encode(),
        headers=build_headers(event_type=spec.event_type, source=source, subject=key),
    )


def _major_event_type(event_type: str) -> str:
    return event_type.rsplit(".v", 1)[0]


def decode(
    spec: TopicSpec[T],
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] | None = None,
) -> T:
    """Parse a record of `spec`'s topic, or raise UndecodableMessage saying exactly why."""
    return decode_as(spec, spec.payload, value, headers)


def decode_as(
    spec: TopicSpec[Any],
    fields: type[W],
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] | None = None,
) -> W:
    """Parse a record of `spec`'s topic into `fields`: the contract itself, or a subset of
    its fields for a consumer that reads only those (a tolerant reader)."""
    if value is None:
        raise UndecodableMessage("empty_value", "record has no value (tombstone)")
    _check_event_type(spec, headers)
    try:
        return fields.model_validate_json(value)
    except ValidationError as error:
        if any(detail["type"] == "json_invalid" for detail in error.errors()):
            reason = f"value is not valid JSON: {error.errors()[0]['msg']}"
            raise UndecodableMessage("malformed_json", reason) from None
        raise UndecodableMessage("schema_violation", describe_validation_error(error)) from None


def _check_event_type(
    spec: TopicSpec[Any], headers: Iterable[tuple[str, bytes | None]] | None
) -> None:
    headers = headers if isinstance(headers, tuple | list) else list(headers or ())
    if ("ce_type", spec.event_type.encode()) in headers:
        return  # exactly ours: the common case, one comparison per header in C
    metadata = parse_headers(headers)
    if metadata.event_type is not None and metadata.event_type != spec.event_type:
        same_family = _major_event_type(metadata.event_type) == _major_event_type(spec.event_type)
        if not same_family:
            raise UndecodableMessage(
                "wrong_event_type",
                f"ce_type {metadata.event_type!r} does not belong on {spec.name} "
                f"(expected {spec.event_type!r})",
            )
        raise UndecodableMessage(
            "unsupported_version",
            f"ce_type {metadata.event_type!r} is a version this consumer cannot read "
            f"(it reads {spec.event_type!r})",
        )


def describe_validation_error(error: ValidationError) -> str:
    """One entry per problem (the first few), naming the field, so a producer can fix its
    message."""
    lines = []
    details = error.errors(include_url=False)
    for detail in details[:MAX_LISTED_PROBLEMS]:
        location = ".".join(str(part) for part in detail["loc"]) or "(message)"
        lines.append(f"{location}: {detail['msg']}")
    return bounded_list(lines, total=len(details))


def warn_unreadable(log: logging.Logger, record: ConsumedRecord, error: UndecodableMessage) -> None:
    """Say where an unreadable record sits and why, once, as every consumer does."""
    log.warning(
        "unreadable record at %s[%d]@%d: %s",
        record.topic,
        record.partition,
        record.offset,
        error.message,
    )


def dead_letter_for_record(
    record: ConsumedRecord, error: UndecodableMessage, *, service: str
) -> DeadLetter:
    """The dead letter for a consumed record no contract could read; its original key
    and bytes survive (the value in base64), except that a value too big to fit in a
    dead letter is cut to its first bytes, which the message says."""
    key, value = record.key, record.value
    message = error.message
    if value is not None and len(value) > MAX_DEAD_LETTER_VALUE_BYTES:
        message = (
            f"{message} (value truncated: the first {KEPT_DEAD_LETTER_VALUE_BYTES} of "
            f"{len(value)} bytes are kept)"
        )
        value = value[:KEPT_DEAD_LETTER_VALUE_BYTES]
    return DeadLetter(
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=key.decode("utf-8", errors="replace") if key is not None else None,
        value=base64.b64encode(value).decode() if value is not None else None,
        error_code=error.code,
        error_message=message,
        service=service,
    )
