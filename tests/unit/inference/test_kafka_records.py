"""Records to requests and predictions to records: unreadable input never stops a batch."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from services.inference.adapters import tracing
from services.inference.adapters.kafka_records import (
    PredictionEncoder,
    dead_letter_record,
    decode_batch,
)
from services.inference.domain.answers import Answer, AnswerError, Classified, Regressed
from shared.callback_seal import is_sealed
from shared.contracts import ErrorCode, Prediction
from shared.contracts.base import utc_now
from shared.kafka.codec import decode, encode
from shared.kafka.headers import parse_headers
from shared.topics import DEAD_LETTERS, PREDICTIONS, REQUESTS
from tests.unit.inference.support import request


def record(value: bytes | None, *, key: bytes | None = b"k", headers=None, offset: int = 0):  # type: ignore[no-untyped-def]
    return ConsumerRecord(
        topic="t-requests",
        partition=3,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=tuple(headers or ()),
    )


def good_record(request_id: str):  # type: ignore[no-untyped-def]
    message = request(request_id, routing_key="cust")
    out = encode(REQUESTS, message, key="cust", source="/tests")
    return record(out.value, key=out.key, headers=out.headers)


def test_good_records_decode_and_unreadable_ones_become_dead_letters() -> None:
    records = [
        good_record("r1"),
        record(b"{not json", key=b"broken"),
        record(
            orjson.dumps(
                {
                    "request_id": "r2",
                    "model": "iris",
                    "inputs": {},
                    "callback": {"url": "https://cb.test/x"},
                }
            ),
            key=b"k2",
        ),
        record(b'["a list"]'),
        record(None, key=b"tombstone"),
        record(orjson.dumps({"request_id": "bad id!", "model": "iris"})),
        good_record("r3"),
    ]
    batch = decode_batch(records, now=utc_now())
    assert [r.request_id for r in batch.requests] == ["r1", "r3"]
    assert len(batch.traceparents) == 2 and all(batch.traceparents)
    codes = [u.dead_letter.error_code for u in batch.unreadable]
    assert codes == [
        "malformed_json",
        "schema_violation",
        "schema_violation",
        "empty_value",
        "schema_violation",
    ]
    schema = batch.unreadable[1]
    assert schema.key == b"k2"
    assert schema.dead_letter.source_topic == "t-requests"
    assert schema.dead_letter.partition == 3
    assert schema.answer is not None
    assert schema.answer.request_id == "r2"
    assert schema.answer.error is not None and schema.answer.error.code == ErrorCode.UNDECODABLE
    assert "inputs" in schema.answer.error.message
    assert schema.answer.callback_url == "https://cb.test/x"
    assert [u.answer is None for u in batch.unreadable] == [True, False, True, True, True]


def test_wrong_event_type_is_refused_even_on_the_fast_path() -> None:
    out = encode(REQUESTS, request("r1"), key="k", source="/x")

    def with_type(event_type: str) -> list[tuple[str, bytes]]:
        return [(n, event_type.encode() if n == "ce_type" else v) for n, v in out.headers]

    wrong = decode_batch(
        [record(out.value, headers=with_type(PREDICTIONS.event_type))], now=utc_now()
    )
    assert wrong.requests == []
    assert wrong.unreadable[0].dead_letter.error_code == "wrong_event_type"
    newer = decode_batch(
        [record(out.value, headers=with_type("io.modelbus.prediction.requested.v2"))],
        now=utc_now(),
    )
    assert newer.unreadable[0].dead_letter.error_code == "unsupported_version"
    assert newer.unreadable[0].answer is not None  # the caller still hears back


def test_records_without_headers_are_read() -> None:
    value = request("plain").model_dump_json().encode()
    batch = decode_batch([record(value, headers=())], now=utc_now())
    assert [r.request_id for r in batch.requests] == ["plain"]
    assert batch.traceparents == [None]


def test_dead_letter_keeps_original_key_and_bytes() -> None:
    batch = decode_batch([record(b"\xff\xfe garbage", key=b"\xffkey")], now=utc_now())
    out = dead_letter_record(batch.unreadable[0], topic="t-dead-letters")
    assert out.key == b"\xffkey"
    letter = decode(DEAD_LETTERS, out.value, out.headers)
    assert base64.b64decode(letter.value or "") == b"\xff\xfe garbage"
    assert letter.service == "inference"


def _answer(**fields: Any) -> Answer:
    defaults: dict[str, Any] = {
        "request_id": "r1",
        "model": "iris",
        "version": 1,
        "variant": "production",
        "output": None,
        "error": AnswerError("x", "y"),
        "latency_ms": 1.0,
        "routing_key": "cust-9",
        "callback_url": None,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    }
    return Answer(**(defaults | fields))


def test_encoder_keys_like_the_request_with_cloudevents_headers() -> None:
    encoder = PredictionEncoder(topic="t-predictions")
    answer = _answer()
    traceparent = tracing.random_traceparent()
    first = encoder.encode(answer, time=b"2024-01-01T00:00:00+00:00", traceparent=traceparent)
    second = encoder.encode(answer, time=b"2024-01-01T00:00:00+00:00", traceparent=traceparent)
    assert first.topic == "t-predictions"
    assert first.key == b"cust-9"
    metadata = parse_headers(first.headers)
    assert metadata.event_type == PREDICTIONS.event_type
    assert metadata.traceparent == traceparent.decode()
    assert metadata.event_id != parse_headers(second.headers).event_id
    no_routing_key = replace(answer, routing_key=None)
    assert encoder.encode(no_routing_key, time=b"t", traceparent=traceparent).key == b"r1"


@pytest.mark.parametrize(
    "answer",
    [
        _answer(),
        _answer(
            error=None,
            output=Classified("setosa", {"setosa": 0.9, "versicolor": 0.1}),
            callback_url="https://example.com/hook?x=1",
        ),
        _answer(error=None, output=Classified(1, {"0": 0.25, "1": 0.75}), routing_key=None),
        _answer(error=None, output=Classified(True, {}), variant="canary", version=7),
        _answer(error=None, output=Regressed(-12.5), variant="shadow", latency_ms=0.0),
        _answer(error=AnswerError("invalid_input", "inputs do not fit: ünïcode"), version=3),
    ],
    ids=["error", "classifier-callback", "int-label", "bool-label", "regressor", "unicode"],
)
def test_encoded_answers_are_predictions_the_contract_reads_back_unchanged(
    answer: Answer,
) -> None:
    """The worker writes predictions without the contract model; the contract reads them."""
    record = PredictionEncoder(topic="t").encode(answer, time=b"t", traceparent=b"tp")
    decoded = decode(PREDICTIONS, record.value, record.headers)
    output = answer.output
    expected = Prediction(
        request_id=answer.request_id,
        model=answer.model,
        version=answer.version,
        variant=answer.variant,
        status=answer.status,
        output=(
            None
            if output is None
            else {"value": output.value}
            if isinstance(output, Regressed)
            else {"label": output.label, "probabilities": output.probabilities}
        ),
        error=(
            None
            if answer.error is None
            else {"code": answer.error.code, "message": answer.error.message}
        ),
        latency_ms=answer.latency_ms,
        routing_key=answer.routing_key,
        callback={"url": answer.callback_url} if answer.callback_url else None,
        created_at=answer.created_at,
    )
    assert decoded == expected
    assert orjson.loads(record.value) == orjson.loads(expected.model_dump_json())


def test_sampled_flag_is_read_from_the_traceparent() -> None:
    assert tracing.is_sampled(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert not tracing.is_sampled(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
    assert not tracing.is_sampled(b"garbage")
    assert (
        tracing.parent_context(b"00-00000000000000000000000000000000-b7ad6b7169203331-01") is None
    )


def test_a_worker_with_the_seal_key_seals_the_callback_it_copied() -> None:
    key = b"callback-seal-key-for-tests-0123456789"
    answer = _answer(callback_url="https://example.com/hook?x=1")
    sealed = PredictionEncoder(topic="t", callback_seal_key=key).encode(
        answer, time=b"t", traceparent=b"tp"
    )
    unsealed = PredictionEncoder(topic="t").encode(answer, time=b"t", traceparent=b"tp")
    no_callback = PredictionEncoder(topic="t", callback_seal_key=key).encode(
        _answer(), time=b"t", traceparent=b"tp"
    )

    read = decode(PREDICTIONS, sealed.value, sealed.headers)
    assert is_sealed(key, "r1", "https://example.com/hook?x=1", read.callback_seal)
    assert not is_sealed(key, "r2", "https://example.com/hook?x=1", read.callback_seal)
    assert not is_sealed(
        b"another-key-0123456789abcdef0123", "r1", str(read.callback.url), read.callback_seal
    )  # type: ignore[union-attr]
    assert decode(PREDICTIONS, unsealed.value, unsealed.headers).callback_seal is None
    assert decode(PREDICTIONS, no_callback.value, no_callback.headers).callback_seal is None
