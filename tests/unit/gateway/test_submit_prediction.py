"""The submit use case against in-memory ports (seams the gateway owns; Kafka and the
database are exercised for real in tests/integration/gateway)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.gateway.service_layer.errors import (
    InvalidInput,
    NoDeployment,
    RequestIdConflict,
    Unavailable,
    UnknownJob,
    UnknownModel,
    UnknownVersion,
)
from services.gateway.service_layer.handlers import PredictionGateway, SubmitPrediction
from shared.clients.authentication import Caller
from shared.contracts import DeploymentState, PredictionRequest, WireModel
from shared.contracts.base import FeatureValue
from shared.jobstore.tables import Job
from shared.jobstore.views import JobView
from shared.signature import FeatureSpec, InputSignature
from shared.topics import REQUESTS, TopicSpec

SIGNATURE_V1 = InputSignature(
    features=[
        FeatureSpec(name="age", kind="integer", minimum=18, maximum=90),
        FeatureSpec(name="plan", kind="category", categories=["free", "pro"]),
    ],
    target="churned",
    task="classification",
    classes=["no", "yes"],
)
SIGNATURE_V2 = InputSignature(
    features=[FeatureSpec(name="age", kind="integer", minimum=18, maximum=90)],
    target="churned",
    task="classification",
    classes=["no", "yes"],
)
GOOD: dict[str, FeatureValue] = {"age": 40, "plan": "pro"}


class Catalog:
    def __init__(self) -> None:
        self.deployments = {"churn": DeploymentState(production=1), "fresh": DeploymentState()}
        self.signatures = {("churn", 1): SIGNATURE_V1, ("churn", 2): SIGNATURE_V2}

    async def deployment(self, model: str) -> DeploymentState:
        if model not in self.deployments:
            raise UnknownModel(f"no model named {model!r}")
        return self.deployments[model]

    async def signature(self, model: str, version: int) -> InputSignature:
        if (model, version) not in self.signatures:
            raise UnknownVersion(f"{model!r} has no version {version}")
        return self.signatures[(model, version)]


class Jobs:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}

    async def find(self, request_id: str) -> JobView | None:
        job = self.jobs.get(request_id)
        return JobView.of(job, []) if job else None

    async def create_pending(self, request: PredictionRequest, owner: str) -> tuple[JobView, bool]:
        created = request.request_id not in self.jobs
        if created:
            self.jobs[request.request_id] = Job(
                request_id=request.request_id, model=request.model, owner=owner
            )
        return JobView.of(self.jobs[request.request_id], []), created

    async def discard_pending(self, request_id: str) -> None:
        self.jobs.pop(request_id, None)


class Publisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, WireModel, str | None]] = []
        self.failure: Exception | None = None

    async def publish(self, spec: TopicSpec[Any], message: Any, *, key: str | None) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append((spec.name, message, key))


@pytest.fixture
def parts() -> tuple[PredictionGateway, Catalog, Jobs, Publisher]:
    catalog, jobs, publisher = Catalog(), Jobs(), Publisher()
    gateway = PredictionGateway(catalog=catalog, jobs=jobs, publisher=publisher)
    return gateway, catalog, jobs, publisher


Parts = tuple[PredictionGateway, Catalog, Jobs, Publisher]


async def test_a_valid_request_is_recorded_and_published_once_keyed_by_routing_key(
    parts: Parts,
) -> None:
    gateway, _, jobs, publisher = parts
    command = SubmitPrediction(
        owner="app", model="churn", request_id="r1", inputs=GOOD, routing_key="cust-7"
    )

    first = await gateway.submit_prediction(command)
    again = await gateway.submit_prediction(command)

    assert (first.replayed, again.replayed) == (False, True)
    assert first.job.status == again.job.status == "pending"
    assert list(jobs.jobs) == ["r1"]
    assert len(publisher.sent) == 1
    topic, message, key = publisher.sent[0]
    assert (topic, key) == (REQUESTS.name, "cust-7")
    assert isinstance(message, PredictionRequest)
    assert (message.model, message.inputs, message.version) == ("churn", GOOD, None)


async def test_a_reused_request_id_for_another_model_is_a_conflict(parts: Parts) -> None:
    gateway, catalog, _, publisher = parts
    catalog.deployments["other"] = DeploymentState(production=1)
    catalog.signatures[("other", 1)] = SIGNATURE_V1
    await gateway.submit_prediction(
        SubmitPrediction(owner="app", model="churn", request_id="r1", inputs=GOOD)
    )

    with pytest.raises(RequestIdConflict, match="already used for model 'churn'"):
        await gateway.submit_prediction(
            SubmitPrediction(owner="app", model="other", request_id="r1", inputs=GOOD)
        )
    assert len(publisher.sent) == 1


async def test_every_input_problem_is_reported_with_its_field(parts: Parts) -> None:
    gateway, _, jobs, publisher = parts

    with pytest.raises(InvalidInput) as caught:
        await gateway.submit_prediction(
            SubmitPrediction(
                owner="app",
                model="churn",
                request_id="r1",
                inputs={"age": "old", "plan": "gold", "x": 1},
            )
        )

    fields = {(problem["field"], problem["code"]) for problem in caught.value.details}
    assert fields == {("age", "wrong_type"), ("plan", "unknown_category"), ("x", "unknown_feature")}
    assert "version 1 of 'churn'" in caught.value.message
    assert jobs.jobs == {} and publisher.sent == []


async def test_a_pinned_version_is_validated_against_its_own_signature(parts: Parts) -> None:
    gateway, _, _, publisher = parts

    await gateway.submit_prediction(
        SubmitPrediction(owner="app", model="churn", request_id="r1", inputs={"age": 30}, version=2)
    )
    with pytest.raises(InvalidInput, match="'plan' is missing"):
        await gateway.submit_prediction(
            SubmitPrediction(owner="app", model="churn", request_id="r2", inputs={"age": 30})
        )

    assert publisher.sent[0][1].version == 2  # type: ignore[attr-defined]


async def test_unknown_model_version_and_missing_production_are_refused(parts: Parts) -> None:
    gateway, _, _, publisher = parts

    with pytest.raises(UnknownModel):
        await gateway.submit_prediction(
            SubmitPrediction(owner="app", model="nope", request_id="a", inputs=GOOD)
        )
    with pytest.raises(UnknownModel, match="can exist"):
        await gateway.submit_prediction(
            SubmitPrediction(owner="app", model="../x", request_id="b", inputs=GOOD)
        )
    with pytest.raises(UnknownVersion):
        await gateway.submit_prediction(
            SubmitPrediction(owner="app", model="churn", request_id="c", inputs=GOOD, version=9)
        )
    with pytest.raises(NoDeployment, match="no production version"):
        await gateway.submit_prediction(
            SubmitPrediction(owner="app", model="fresh", request_id="d", inputs=GOOD)
        )
    assert publisher.sent == []


async def test_a_failed_publish_forgets_the_job_so_a_retry_publishes(parts: Parts) -> None:
    gateway, _, jobs, publisher = parts
    command = SubmitPrediction(owner="app", model="churn", request_id="r1", inputs=GOOD)
    publisher.failure = ConnectionError("broker down")

    with pytest.raises(Unavailable, match="retry with the same request_id"):
        await gateway.submit_prediction(command)
    assert jobs.jobs == {}

    publisher.failure = None
    accepted = await gateway.submit_prediction(command)

    assert not accepted.replayed
    assert len(publisher.sent) == 1


async def test_an_unknown_job_is_reported(parts: Parts) -> None:
    gateway, _, _, _ = parts

    with pytest.raises(UnknownJob, match="'missing'"):
        await gateway.job("missing", Caller("app", "reader", "h"))


async def test_values_a_little_outside_the_training_range_pass_the_tolerance() -> None:
    publisher = Publisher()
    gateway = PredictionGateway(
        catalog=Catalog(), jobs=Jobs(), publisher=publisher, range_tolerance=0.1
    )

    await gateway.submit_prediction(
        SubmitPrediction(
            owner="app", model="churn", request_id="a", inputs={"age": 95, "plan": "pro"}
        )
    )
    with pytest.raises(InvalidInput, match="above the training maximum 90"):
        await gateway.submit_prediction(
            SubmitPrediction(
                owner="app", model="churn", request_id="b", inputs={"age": 98, "plan": "pro"}
            )
        )
    assert len(publisher.sent) == 1


async def test_a_job_is_seen_only_by_its_key_and_admins_and_an_ownerless_one_by_admins(
    parts: Parts,
) -> None:
    gateway, _, jobs, _ = parts
    await gateway.submit_prediction(
        SubmitPrediction(owner="app", model="churn", request_id="r1", inputs=GOOD)
    )
    jobs.jobs["from-kafka"] = Job(request_id="from-kafka", model="churn", owner=None)

    assert (await gateway.job("r1", Caller("app", "reader", "h"))).owner == "app"
    assert (await gateway.job("r1", Caller("root", "admin", "h"))).request_id == "r1"
    with pytest.raises(UnknownJob, match="no job with request id 'r1'"):
        await gateway.job("r1", Caller("other", "approver", "h"))
    assert (await gateway.job("from-kafka", Caller("root", "admin", "h"))).owner is None
    with pytest.raises(UnknownJob, match="no job with request id 'from-kafka'"):
        await gateway.job("from-kafka", Caller("other", "reader", "h"))


async def test_another_key_cannot_replay_or_learn_about_a_taken_request_id(parts: Parts) -> None:
    gateway, _, _, publisher = parts
    await gateway.submit_prediction(
        SubmitPrediction(owner="app", model="churn", request_id="r1", inputs=GOOD)
    )

    with pytest.raises(RequestIdConflict) as refused:
        await gateway.submit_prediction(
            SubmitPrediction(owner="other", model="churn", request_id="r1", inputs=GOOD)
        )
    assert "churn" not in str(refused.value)
    assert len(publisher.sent) == 1


async def test_a_retry_of_a_long_pending_job_publishes_its_request_again() -> None:
    """The first attempt may have died between recording the job and publishing it."""
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    catalog, jobs, publisher = Catalog(), Jobs(), Publisher()
    gateway = PredictionGateway(
        catalog=catalog,
        jobs=jobs,
        publisher=publisher,
        republish_pending_after=timedelta(seconds=30),
        clock=lambda: now[0],
    )
    command = SubmitPrediction(owner="app", model="churn", request_id="r1", inputs=GOOD)
    await gateway.submit_prediction(command)
    created = jobs.jobs["r1"].created_at
    publisher.sent.clear()  # as if the process died before publishing

    now[0] = created + timedelta(seconds=29)
    soon = await gateway.submit_prediction(command)
    assert soon.replayed and publisher.sent == []

    now[0] = created + timedelta(seconds=31)
    late = await gateway.submit_prediction(command)
    assert late.replayed
    assert [(topic, message.request_id) for topic, message, _ in publisher.sent] == [
        ("requests", "r1")
    ]

    jobs.jobs["r1"].status = "done"
    now[0] = created + timedelta(hours=1)
    await gateway.submit_prediction(command)
    assert len(publisher.sent) == 1  # an answered job is never published again
