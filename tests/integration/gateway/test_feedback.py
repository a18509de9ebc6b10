"""Feedback through the gateway: in the caller's name, only on a job the caller may label,
with labels the model could give; published to `feedback` on the real broker. The job
store runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.contracts import ClassifierOutput, Feedback, Prediction, RegressorOutput
from shared.jobstore.store import JobStore
from shared.kafka.codec import decode
from shared.topics import FEEDBACK
from tests.integration.gateway.conftest import IRIS_INPUTS, Gateway, Stack, StartGateway
from tests.integration.gateway.topic_contents import read_to_end

pytestmark = [pytest.mark.kafka]


@pytest.fixture
def gateway(start_gateway: StartGateway, own_topics: str, database_url: str) -> Iterator[Gateway]:
    with start_gateway(topic_prefix=own_topics, jobs_database_url=database_url) as running:
        yield running


def _published(stack: Stack, prefix: str) -> list[tuple[bytes, Feedback]]:
    found = []
    for record in read_to_end(stack.bootstrap, f"{prefix}feedback"):
        feedback = decode(FEEDBACK, record.value, record.headers)
        assert isinstance(feedback, Feedback)
        assert dict(record.headers)["ce_type"] == FEEDBACK.event_type.encode()
        found.append((record.key, feedback))
    return found


def _feedback(gateway: Gateway, role: str, **body: Any) -> httpx.Response:
    return gateway.call("POST", "/v1/feedback", role=role, json=body)


def _submit(gateway: Gateway, request_id: str, role: str = "client") -> None:
    submitted = gateway.predict(
        "iris", {"request_id": request_id, "inputs": IRIS_INPUTS}, role=role
    )
    assert submitted.status_code == 202, submitted.text


def _answer(gateway: Gateway, request_id: str, model: str, output: Any) -> None:
    """Record the job's prediction as delivery does when it reads `predictions`."""
    JobStore(gateway.container.jobs.engine).record_predictions(
        [
            Prediction(
                request_id=request_id,
                model=model,
                version=1,
                variant="production",
                status="ok",
                output=output,
                latency_ms=1.0,
            )
        ]
    )


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    return str(error["message"])


def test_the_source_is_the_callers_key_and_the_authority_its_role(
    gateway: Gateway, own_topics: str, stack: Stack
) -> None:
    _submit(gateway, "order-7")

    by_submitter = _feedback(gateway, "client", request_id="order-7", rating="up")
    by_reviewer = _feedback(
        gateway, "reviewer", request_id="order-7", label="versicolor", feedback_id="fb-1"
    )
    by_approver = _feedback(gateway, "approver", request_id="order-7", signal="copied")

    assert by_submitter.status_code == 202, by_submitter.text
    assert by_submitter.json()["source"] == "client-key"
    assert by_submitter.json()["authority"] == "user"
    assert by_reviewer.json() == {
        "feedback_id": "fb-1",
        "request_id": "order-7",
        "source": "reviewer-key",
        "authority": "reviewer",
        "status": "accepted",
    }
    assert by_approver.status_code == 202 and by_approver.json()["authority"] == "reviewer"
    published = _published(stack, own_topics)
    assert [key for key, _ in published] == [b"order-7"] * 3
    assert [(f.source, f.authority) for _, f in published] == [
        ("client-key", "user"),
        ("reviewer-key", "reviewer"),
        ("approver-key", "reviewer"),
    ]
    assert (published[0][1].rating, published[1][1].label) == ("up", "versicolor")
    assert published[1][1].feedback_id == "fb-1"
    assert published[0][1].feedback_id == by_submitter.json()["feedback_id"]


def test_someone_elses_job_is_403_an_unknown_one_404_and_nothing_is_published(
    gateway: Gateway, own_topics: str, stack: Stack
) -> None:
    _submit(gateway, "order-8", role="client")
    _answer(
        gateway,
        "straight-from-kafka",
        "iris",
        ClassifierOutput(
            label="setosa", probabilities={"setosa": 0.9, "versicolor": 0.05, "virginica": 0.05}
        ),
    )

    foreign = _feedback(gateway, "reader", request_id="order-8", rating="down")
    unowned = _feedback(gateway, "client", request_id="straight-from-kafka", rating="down")
    unknown = _feedback(gateway, "reviewer", request_id="never-submitted", rating="down")
    assert _published(stack, own_topics) == []
    reviewed = _feedback(gateway, "reviewer", request_id="straight-from-kafka", label="setosa")

    assert "not submitted with key 'reader-key'" in _error(foreign, 403, "forbidden")
    assert "or a reviewer" in _error(unowned, 403, "forbidden")
    assert "'never-submitted'" in _error(unknown, 404, "unknown_job")
    assert reviewed.status_code == 202, reviewed.text
    [(_, published)] = _published(stack, own_topics)
    assert (published.request_id, published.authority) == ("straight-from-kafka", "reviewer")


def test_a_label_must_be_a_class_of_the_answered_classifier(
    gateway: Gateway, own_topics: str, stack: Stack
) -> None:
    _submit(gateway, "order-9")
    early = _feedback(gateway, "client", request_id="order-9", label="virginica")
    _answer(
        gateway,
        "order-9",
        "iris",
        ClassifierOutput(
            label="setosa", probabilities={"setosa": 0.8, "versicolor": 0.1, "virginica": 0.1}
        ),
    )

    unknown_class = _feedback(gateway, "client", request_id="order-9", label="tulip")
    by_reviewer = _feedback(gateway, "reviewer", request_id="order-9", label=3)
    known = _feedback(gateway, "client", request_id="order-9", label="versicolor")

    assert early.status_code == 202, early.text  # no answer yet: the feedback service checks
    message = _error(unknown_class, 422, "invalid_input")
    assert "'tulip' is not one of the model's classes" in message
    assert "classes: 'setosa'; 'versicolor'; 'virginica'" in message
    assert unknown_class.json()["error"]["details"]["classes"] == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    assert "3 is not one of" in _error(by_reviewer, 422, "invalid_input")
    assert known.status_code == 202, known.text
    assert [f.label for _, f in _published(stack, own_topics)] == ["virginica", "versicolor"]


def test_a_regressor_label_must_be_a_number(
    gateway: Gateway, own_topics: str, stack: Stack
) -> None:
    _answer(gateway, "price-1", "prices", RegressorOutput(value=210.5))

    text = _feedback(gateway, "reviewer", request_id="price-1", label="expensive")
    numeric_text = _feedback(gateway, "reviewer", request_id="price-1", label="199.0")
    number = _feedback(gateway, "reviewer", request_id="price-1", label=199.0)

    assert "not a number, and the model is a regressor" in _error(text, 422, "invalid_input")
    assert "not a number" in _error(numeric_text, 422, "invalid_input")
    assert number.status_code == 202, number.text
    assert [f.label for _, f in _published(stack, own_topics)] == [199.0]


BAD_FEEDBACK: list[tuple[dict[str, Any], str]] = [
    (
        {"request_id": "order-8", "label": "setosa", "rating": "up"},
        "exactly one of label, rating, signal; got ['label', 'rating']",
    ),
    ({"request_id": "order-8"}, "exactly one of label, rating, signal"),
    ({"request_id": "order-8", "rating": "meh"}, "rating"),
    ({"rating": "up"}, "request_id"),
    (
        {"request_id": "order-8", "signal": "copied", "source": "support-desk"},
        "source may not be sent: the source comes from the API key",
    ),
    (
        {"request_id": "order-8", "rating": "up", "authority": "reviewer"},
        "authority may not be sent: the source comes from the API key",
    ),
    ({"request_id": "order-8", "rating": "up", "colour": "red"}, "colour"),
]


def test_bad_feedback_is_422_and_not_published(
    gateway: Gateway, own_topics: str, stack: Stack
) -> None:
    _submit(gateway, "order-8")

    answers = [gateway.call("POST", "/v1/feedback", json=body) for body, _ in BAD_FEEDBACK]

    for response, (_, phrase) in zip(answers, BAD_FEEDBACK, strict=True):
        assert phrase in _error(response, 422, "invalid_input")
    assert _published(stack, own_topics) == []
