"""Feedback through the gateway: who may label a job, with what authority, which labels fit.

The use case runs against the in-memory ports of test_submit_prediction (seams the gateway
owns); the broker and both databases are exercised in tests/integration/gateway.
"""

from __future__ import annotations

import math

import pytest

from services.gateway.domain.feedback import authority_of, label_problem, may_label
from services.gateway.service_layer.errors import Forbidden, InvalidInput, UnknownJob
from services.gateway.service_layer.feedback import FeedbackIntake, SendFeedback
from shared.clients.authentication import Caller
from shared.contracts import ClassifierOutput, Prediction, RegressorOutput
from shared.contracts.base import Label
from shared.jobstore.tables import Job
from shared.topics import FEEDBACK
from tests.unit.gateway.test_submit_prediction import Catalog, Jobs, Publisher

APP = Caller("app", "client", "h1")
OTHER = Caller("other-app", "approver", "h2")  # approver is above reviewer: reviews too
STRANGER = Caller("stranger", "reader", "h3")
REVIEWER = Caller("labeller", "reviewer", "h4")
CHURN = ClassifierOutput(label="yes", probabilities={"no": 0.3, "yes": 0.7})


def test_the_submitter_or_a_reviewer_may_label() -> None:
    assert may_label(APP, "app")
    assert not may_label(STRANGER, "app")
    assert may_label(REVIEWER, "app") and may_label(OTHER, "app")
    assert may_label(REVIEWER, None)  # published straight to Kafka
    assert not may_label(APP, None)


def test_the_authority_follows_the_role_not_the_body() -> None:
    assert authority_of(APP) == authority_of(STRANGER) == "user"
    assert authority_of(REVIEWER) == authority_of(OTHER) == "reviewer"
    assert authority_of(Caller("odd", "superuser", "h")) == "user"


@pytest.mark.parametrize(
    ("label", "fits"),
    [("yes", True), ("no", True), ("maybe", False), (1, False), (True, False)],
)
def test_a_classifier_label_must_be_a_class(label: Label, fits: bool) -> None:
    problem = label_problem(label, CHURN, ["no", "yes"])
    assert (problem is None) is fits
    if not fits:
        assert problem is not None and "classes: 'no'; 'yes'" in problem


def test_numeric_classes_compare_as_their_text() -> None:
    output = ClassifierOutput(label=1, probabilities={"0": 0.4, "1": 0.6})
    assert label_problem(1, output, ["0", "1"]) is None
    assert label_problem(1.0, output, ["0", "1"]) is None
    assert label_problem(2, output, ["0", "1"]) is not None


@pytest.mark.parametrize(
    ("label", "fits"),
    [(3.5, True), (-2, True), ("3.5", False), (True, False), (math.inf, False)],
)
def test_a_regressor_label_must_be_a_finite_number(label: Label, fits: bool) -> None:
    assert (label_problem(label, RegressorOutput(value=3.0), []) is None) is fits


def _intake() -> tuple[FeedbackIntake, Jobs, Publisher]:
    catalog, jobs, publisher = Catalog(), Jobs(), Publisher()
    return FeedbackIntake(catalog=catalog, jobs=jobs, publisher=publisher), jobs, publisher


def _answered(jobs: Jobs, request_id: str, owner: str | None, output: object) -> None:
    prediction = Prediction(
        request_id=request_id,
        model="churn",
        version=1,
        variant="production",
        status="ok",
        output=output,  # type: ignore[arg-type]
        latency_ms=1.0,
    )
    jobs.jobs[request_id] = Job(
        request_id=request_id,
        model="churn",
        owner=owner,
        status="done",
        prediction=prediction.model_dump(mode="json"),
    )


async def test_feedback_is_published_in_the_callers_name_keyed_by_request_id() -> None:
    intake, jobs, publisher = _intake()
    jobs.jobs["r1"] = Job(request_id="r1", model="churn", owner="app")

    sent = await intake.submit(SendFeedback(request_id="r1", rating="up"), APP)
    reviewed = await intake.submit(SendFeedback(request_id="r1", label="no"), REVIEWER)

    assert publisher.sent == [(FEEDBACK.name, sent, "r1"), (FEEDBACK.name, reviewed, "r1")]
    assert (sent.source, sent.authority, sent.rating) == ("app", "user", "up")
    assert (reviewed.source, reviewed.authority) == ("labeller", "reviewer")


async def test_unknown_and_foreign_jobs_are_refused_and_nothing_is_published() -> None:
    intake, jobs, publisher = _intake()
    jobs.jobs["r1"] = Job(request_id="r1", model="churn", owner="app")
    jobs.jobs["direct"] = Job(request_id="direct", model="churn", owner=None)

    with pytest.raises(UnknownJob, match="'missing'"):
        await intake.submit(SendFeedback(request_id="missing", rating="up"), REVIEWER)
    with pytest.raises(Forbidden, match="not submitted with key 'stranger'"):
        await intake.submit(SendFeedback(request_id="r1", rating="up"), STRANGER)
    with pytest.raises(Forbidden):
        await intake.submit(SendFeedback(request_id="direct", rating="up"), APP)
    assert publisher.sent == []
    await intake.submit(SendFeedback(request_id="direct", rating="up"), REVIEWER)
    assert len(publisher.sent) == 1


async def test_a_label_is_checked_against_the_answer_once_there_is_one() -> None:
    intake, jobs, publisher = _intake()
    jobs.jobs["pending"] = Job(request_id="pending", model="churn", owner="app")
    _answered(jobs, "answered", "app", CHURN)
    _answered(jobs, "no-probabilities", "app", ClassifierOutput(label="no", probabilities={}))

    await intake.submit(SendFeedback(request_id="pending", label="anything"), APP)
    await intake.submit(SendFeedback(request_id="answered", label="no"), APP)
    with pytest.raises(InvalidInput, match=r"'maybe' is not one of the model's classes: 'no'; 'y"):
        await intake.submit(SendFeedback(request_id="answered", label="maybe"), APP)
    with pytest.raises(InvalidInput, match="'maybe' is not one of"):  # the signature's classes
        await intake.submit(SendFeedback(request_id="no-probabilities", label="maybe"), APP)
    assert len(publisher.sent) == 2
