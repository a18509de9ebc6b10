"""Bytes become typed messages in one place, with headers, and bad bytes get a reason."""

from __future__ import annotations

import base64
import json

import pytest
from aiokafka.structs import ConsumerRecord

from shared.contracts import Feedback, PredictionRequest
from shared.kafka.codec import UndecodableMessage, dead_letter_for_record, decode, encode
from shared.kafka.headers import parse_headers
from shared.topics import ALL_TOPICS, FEEDBACK, REQUESTS, topic_by_name

REQUEST = PredictionRequest(request_id="r-1", model="iris", inputs={"x": 1.0})


def test_encode_sets_cloudevents_and_traceparent_headers() -> None:
    record = encode(REQUESTS, REQUEST, key=REQUEST.partition_key, source="/modelbus/test")
    headers = dict(record.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == REQUESTS.event_type.encode()
    assert headers["ce_source"] == b"/modelbus/test"
    assert headers["content-type"] == b"application/json"
    assert headers["ce_id"]
    metadata = parse_headers(record.headers)
    assert metadata.traceparent is not None and metadata.traceparent.startswith("00-")
    assert record.key == b"r-1"


def test_round_trip() -> None:
    record = encode(REQUESTS, REQUEST, key="r-1", source="/t")
    assert decode(REQUESTS, record.value, record.headers) == REQUEST


def test_encode_refuses_a_message_for_the_wrong_topic() -> None:
    with pytest.raises(TypeError, match="feedback carries Feedback"):
        encode(FEEDBACK, REQUEST, key=None, source="/t")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "code", "fragment"),
    [
        (None, "empty_value", "tombstone"),
        (b"\xff\xfe not json", "malformed_json", "not valid JSON"),
        (b'{"request_id": "r"}', "schema_violation", "model: Field required"),
        (b'{"request_id": "r", "model": "iris", "inputs": "x"}', "schema_violation", "inputs"),
    ],
)
def test_decode_says_why_it_failed(value: bytes | None, code: str, fragment: str) -> None:
    with pytest.raises(UndecodableMessage) as caught:
        decode(REQUESTS, value)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_decode_refuses_other_event_types_and_future_versions() -> None:
    value = REQUEST.model_dump_json().encode()
    with pytest.raises(UndecodableMessage) as wrong:
        decode(REQUESTS, value, [("ce_type", FEEDBACK.event_type.encode())])
    assert wrong.value.code == "wrong_event_type"
    with pytest.raises(UndecodableMessage) as future:
        decode(REQUESTS, value, [("ce_type", b"io.modelbus.prediction.requested.v2")])
    assert future.value.code == "unsupported_version"


def test_decode_without_headers_still_reads_plain_json() -> None:
    raw = json.dumps({"request_id": "x", "model": "iris", "inputs": {"a": 1}}).encode()
    assert decode(REQUESTS, raw).request_id == "x"


def test_dead_letter_keeps_original_bytes() -> None:
    error = UndecodableMessage("malformed_json", "value is not valid JSON")
    record = ConsumerRecord(
        topic="requests",
        partition=3,
        offset=42,
        timestamp=0,
        timestamp_type=0,
        key=b"k\xff",
        value=b"\x00\x01",
        checksum=None,
        serialized_key_size=2,
        serialized_value_size=2,
        headers=(),
    )
    letter = dead_letter_for_record(record, error, service="inference")
    assert base64.b64decode(letter.value or "") == b"\x00\x01"
    assert (letter.error_code, letter.partition, letter.offset) == ("malformed_json", 3, 42)
    assert (letter.source_topic, letter.key, letter.service) == ("requests", "k\ufffd", "inference")


def test_catalogue_covers_the_mission_topics() -> None:
    names = {spec.name for spec in ALL_TOPICS}
    assert {"requests", "predictions", "feedback", "drift-alerts", "model-events"} <= names
    assert topic_by_name("feedback").payload is Feedback
    with pytest.raises(KeyError, match="known topics"):
        topic_by_name("nope")
