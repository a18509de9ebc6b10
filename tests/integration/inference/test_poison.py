"""Poison records never stall a partition: an oversized or faulty record gets one small
error answer (or a truncated dead letter), and the records after it are served."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from numpy.typing import NDArray

from devtools.sample_models import iris_classifier
from services.inference.adapters.kafka_records import MAX_DEAD_LETTER_VALUE_CHARS
from services.inference.domain.answers import Output
from services.inference.domain.servable import ServableModel
from shared.contracts import DeadLetter, ErrorCode, PredictionRequest
from shared.kafka.codec import decode
from shared.topics import DEAD_LETTERS, PREDICTIONS
from tests.integration.inference.conftest import SETOSA, Stack, TopicFollower, answered

SMALL_ANSWER_BYTES = 8_000
MARKER_SEPAL_LENGTH = 6.66


def huge_request(request_id: str, routing_key: str) -> bytes:
    """About 1 MB: the iris features plus 25,000 keys no model has."""
    unknown = {f"no_such_feature_{index:05d}_padding": 1.5 for index in range(25_000)}
    value = orjson.dumps(
        {
            "request_id": request_id,
            "model": "iris",
            "inputs": SETOSA | unknown,
            "routing_key": routing_key,
        }
    )
    assert 900_000 < len(value) < 1_040_000
    return value


async def test_a_request_with_25000_unknown_keys_gets_one_small_error_and_the_partition_moves_on(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier()])
    async with (
        stack.worker(),
        TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower,
    ):
        await stack.send_raw(huge_request("poison-keys", "entity-1"), key=b"entity-1")
        await stack.send([iris_request("after-poison", routing_key="entity-1")])
        await follower.until(answered(["poison-keys", "after-poison"]))
        records = follower.records
    by_id: dict[str, list[Any]] = {}
    for record in records:
        by_id.setdefault(orjson.loads(record.value)["request_id"], []).append(record)
    [poison] = by_id["poison-keys"]
    assert len(poison.value) < SMALL_ANSWER_BYTES
    prediction = decode(PREDICTIONS, poison.value, poison.headers)
    assert prediction.status == "error" and prediction.error is not None
    assert prediction.error.code == ErrorCode.INVALID_INPUT
    assert "(25000 problems)" in prediction.error.message
    assert prediction.error.message.endswith("and 24990 more")
    [after] = by_id["after-poison"]
    assert decode(PREDICTIONS, after.value, after.headers).status == "ok"


async def test_an_unreadable_1mb_record_gets_a_truncated_dead_letter_and_the_partition_moves_on(
    stack: Stack, iris_request: Callable[..., PredictionRequest]
) -> None:
    stack.registry.deploy("iris", [iris_classifier()])
    unreadable = orjson.dumps(
        {"request_id": "poison-value", "model": "iris", "inputs": "x" * 1_000_000}
    )
    async with (
        stack.worker(),
        TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as predictions,
        TopicFollower(stack.bootstrap, stack.topic(DEAD_LETTERS.name)) as dead_letters,
    ):
        await stack.send_raw(unreadable, key=b"entity-2")
        await stack.send([iris_request("after-unreadable", routing_key="entity-2")])
        found = await predictions.until(answered(["poison-value", "after-unreadable"]))
        [letter_record] = await dead_letters.until_count(1)
    answers = {p.request_id: p for p in found}
    assert answers["poison-value"].error is not None
    assert answers["poison-value"].error.code == ErrorCode.UNDECODABLE
    assert answers["after-unreadable"].status == "ok"
    letter = decode(DEAD_LETTERS, letter_record.value, letter_record.headers)
    assert isinstance(letter, DeadLetter)
    assert len(letter_record.value) < 100_000
    assert letter.value is not None and len(letter.value) == MAX_DEAD_LETTER_VALUE_CHARS
    assert base64.b64encode(unreadable).decode().startswith(letter.value)
    assert "truncated" in letter.error_message


async def test_a_fault_while_serving_one_request_answers_it_with_internal_error(
    stack: Stack, iris_request: Callable[..., PredictionRequest], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.registry.deploy("iris", [iris_classifier()])
    predict = ServableModel.predict_matrix

    def faulty_predict(self: ServableModel, matrix: NDArray[Any]) -> list[Output]:
        if np.any(np.isclose(matrix, MARKER_SEPAL_LENGTH)):
            raise RuntimeError("injected fault")  # not PredictFailed: a bug, not a bad model
        return predict(self, matrix)

    monkeypatch.setattr(ServableModel, "predict_matrix", faulty_predict)
    poisoned = SETOSA | {"sepal_length": MARKER_SEPAL_LENGTH}
    requests = [iris_request(f"fault-{index}", routing_key="entity-3") for index in range(10)]
    requests.insert(5, iris_request("fault-poison", routing_key="entity-3", inputs=poisoned))
    async with stack.worker(max_batch_records=50) as worker:
        async with TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower:
            await stack.send(requests)
            found = await follower.until(answered(r.request_id for r in requests))
            await stack.send([iris_request("fault-after", routing_key="entity-3")])
            found = await follower.until(answered(["fault-after"]))
        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://127.0.0.1:{worker.health_port}/healthz")
    assert health.status_code == 200
    answers: dict[str, list[Any]] = {}
    for prediction in found:
        answers.setdefault(prediction.request_id, []).append(prediction)
    assert all(len(copies) == 1 for copies in answers.values())
    [poison] = answers.pop("fault-poison")
    assert poison.status == "error" and poison.error is not None
    assert poison.error.code == ErrorCode.INTERNAL_ERROR
    assert all(copies[0].status == "ok" for copies in answers.values())
    assert worker.metrics.errors[ErrorCode.INTERNAL_ERROR] == 1
