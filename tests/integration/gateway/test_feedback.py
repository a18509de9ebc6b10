"""Feedback through the gateway: validated against the contract, published to `feedback`."""

from __future__ import annotations

from typing import Any

import pytest

from shared.contracts import Feedback
from shared.kafka.codec import decode
from shared.topics import FEEDBACK
from tests.integration.gateway.conftest import Stack, StartGateway
from tests.integration.gateway.topic_contents import read_to_end
from tests.support.topic_reader import read_records_sync

pytestmark = [pytest.mark.kafka]


def test_feedback_is_accepted_and_published(
    start_gateway: StartGateway, own_topics: str, stack: Stack
) -> None:
    with start_gateway(topic_prefix=own_topics) as gateway:
        response = gateway.call(
            "POST",
            "/v1/feedback",
            json={
                "feedback_id": "fb-1",
                "request_id": "order-7",
                "label": "versicolor",
                "source": "support-desk",
            },
        )

    assert response.status_code == 202, response.text
    assert response.json() == {"feedback_id": "fb-1", "request_id": "order-7", "status": "accepted"}
    [record] = read_records_sync(stack.bootstrap, f"{own_topics}feedback", expected=1)
    assert record.key == b"order-7"
    feedback = decode(FEEDBACK, record.value, record.headers)
    assert isinstance(feedback, Feedback)
    assert (feedback.feedback_id, feedback.request_id) == ("fb-1", "order-7")
    assert (feedback.label, feedback.rating, feedback.signal) == ("versicolor", None, None)
    assert feedback.source == "support-desk"
    assert dict(record.headers)["ce_type"] == FEEDBACK.event_type.encode()


BAD_FEEDBACK: list[tuple[dict[str, Any], str]] = [
    (
        {"request_id": "order-8", "label": "setosa", "rating": "up", "source": "app"},
        "exactly one of label, rating, signal; got ['label', 'rating']",
    ),
    ({"request_id": "order-8", "source": "app"}, "exactly one of label, rating, signal"),
    ({"request_id": "order-8", "rating": "meh", "source": "app"}, "rating"),
    ({"rating": "up", "source": "app"}, "request_id"),
    ({"request_id": "order-8", "signal": "copied"}, "source"),
]


def test_bad_feedback_is_422_and_not_published(
    start_gateway: StartGateway, own_topics: str, stack: Stack
) -> None:
    with start_gateway(topic_prefix=own_topics) as gateway:
        answers = [gateway.call("POST", "/v1/feedback", json=body) for body, _ in BAD_FEEDBACK]

    for response, (_, phrase) in zip(answers, BAD_FEEDBACK, strict=True):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert phrase in error["message"], error["message"]
    assert read_to_end(stack.bootstrap, f"{own_topics}feedback") == []
