"""Outputs over the record size limit get small stand-ins that still read as their contract."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from services.inference.adapters.kafka_records import (
    MAX_DEAD_LETTER_VALUE_CHARS,
    OversizedRecords,
    PredictionEncoder,
)
from services.inference.domain.answers import Answer, Classified
from shared.contracts import DeadLetter, ErrorCode
from shared.kafka.codec import OutgoingRecord, decode, encode
from shared.topics import DEAD_LETTERS, PREDICTIONS

LIMIT = 1_000_000
oversized = OversizedRecords(
    predictions_topic="t-predictions", dead_letters_topic="t-dead-letters", limit=LIMIT
)


def test_an_oversized_answer_becomes_a_small_too_large_error_for_the_same_request() -> None:
    answer = Answer(
        request_id="r-big",
        model="iris",
        version=2,
        variant="canary",
        output=Classified("a", {f"class-{i}": 0.0 for i in range(60_000)}),
        error=None,
        latency_ms=1.0,
        routing_key="entity-9",
        callback_url="https://example.com/hook",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    record = PredictionEncoder(topic="t-predictions").encode(
        answer, time=b"now", traceparent=b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"
    )
    assert len(record.value) > LIMIT
    smaller = oversized(record)
    assert smaller is not None and len(smaller.value) < 2_000
    assert (smaller.key, smaller.headers) == (record.key, record.headers)
    prediction = decode(PREDICTIONS, smaller.value, smaller.headers)
    assert prediction.request_id == "r-big" and prediction.variant == "canary"
    assert prediction.status == "error" and prediction.output is None
    assert prediction.error is not None and prediction.error.code == ErrorCode.TOO_LARGE
    assert prediction.callback is not None


def test_an_oversized_dead_letter_is_truncated_and_says_so() -> None:
    original = b"x" * 2_000_000
    letter = DeadLetter(
        source_topic="t-requests",
        partition=0,
        offset=7,
        value=base64.b64encode(original).decode(),
        error_code="schema_violation",
        error_message="inputs: Input should be a valid dictionary",
        service="inference",
    )
    record = encode(DEAD_LETTERS, letter, key="k", source="/t", topic="t-dead-letters")
    smaller = oversized(record)
    assert smaller is not None and len(smaller.value) < 100_000
    truncated = decode(DEAD_LETTERS, smaller.value, smaller.headers)
    assert truncated.value is not None and len(truncated.value) == MAX_DEAD_LETTER_VALUE_CHARS
    assert truncated.offset == 7 and truncated.error_code == "schema_violation"
    assert "truncated" in truncated.error_message


def test_records_of_other_topics_have_no_stand_in() -> None:
    assert oversized(OutgoingRecord("elsewhere", None, b"{}", [])) is None
