"""The gateway's HTTP routes under /v1: thin adapters from HTTP to the use cases.

Any registry role (client, reader, reviewer, publisher, approver, admin) may predict, send
feedback and read its own jobs: the gateway serves models, it changes nothing in the registry.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, status
from pydantic import TypeAdapter, ValidationError

from services.gateway.entrypoints.dependencies import CallerDep, ContainerDep
from services.gateway.entrypoints.views import (
    ErrorBody,
    FeedbackAccepted,
    FeedbackBody,
    JobAccepted,
    PredictBody,
)
from services.gateway.service_layer.errors import InvalidInput
from services.gateway.service_layer.feedback import SendFeedback
from services.gateway.service_layer.handlers import SubmitPrediction
from shared.contracts.base import RequestId, new_id
from shared.jobstore.views import JobView

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 422, 429, 503)
}
router = APIRouter(prefix="/v1", responses=ERRORS)
_request_id = TypeAdapter(RequestId)


def _chosen_request_id(in_body: str | None, header: str | None) -> str:
    """The body's request_id, else the Idempotency-Key header, else a fresh id."""
    if header is not None:
        try:
            header = _request_id.validate_python(header)
        except ValidationError:
            raise InvalidInput(
                "Idempotency-Key must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
                details=[{"field": "header.idempotency-key", "code": "string_pattern_mismatch"}],
            ) from None
        if in_body is not None and in_body != header:
            raise InvalidInput(
                f"request_id {in_body!r} and Idempotency-Key {header!r} differ; send one or "
                "make them equal"
            )
    return in_body or header or new_id()


@router.post("/models/{name}/predict", status_code=status.HTTP_202_ACCEPTED, tags=["predictions"])
async def predict(
    name: str,
    body: PredictBody,
    caller: CallerDep,
    container: ContainerDep,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(description="Alternative to request_id in the body.")
    ] = None,
) -> JobAccepted:
    """Queue a prediction job: validated against the serving version's signature, then
    published to `requests`. Answers 202 at once; the result comes by webhook or from
    `GET /v1/jobs/{request_id}`. Posting the same request_id again queues nothing new."""
    accepted = await container.gateway.submit_prediction(
        SubmitPrediction(
            model=name,
            request_id=_chosen_request_id(body.request_id, idempotency_key),
            inputs=body.inputs,
            owner=caller.name,
            version=body.version,
            callback=body.callback,
            routing_key=body.routing_key,
        )
    )
    status_url = f"/v1/jobs/{accepted.job.request_id}"
    response.headers["Location"] = status_url
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return JobAccepted(
        request_id=accepted.job.request_id, status=accepted.job.status, status_url=status_url
    )


@router.get("/jobs/{request_id}", tags=["predictions"])
async def get_job(request_id: str, caller: CallerDep, container: ContainerDep) -> JobView:
    """What became of a job: pending, done with its prediction or failed with the error,
    and how its webhook delivery went. A job submitted here is visible only to the key
    that submitted it (and to admin keys); another key gets 404. A job published straight
    to Kafka has no owner and is visible to admin keys only."""
    return await container.gateway.job(request_id, caller)


@router.post("/feedback", status_code=status.HTTP_202_ACCEPTED, tags=["feedback"])
async def send_feedback(
    body: FeedbackBody, caller: CallerDep, container: ContainerDep
) -> FeedbackAccepted:
    """Exactly one of an explicit label, a rating or an implicit signal about a job, sent
    by the key that submitted it or by a reviewer (403 otherwise, 404 for an unknown job);
    published to `feedback` with the key's name as its source. Once the job has its
    answer, a label must be one of the classifier's classes, or a number for a regressor.
    `feedback_id` is the idempotency key downstream."""
    feedback = await container.feedback.submit(
        SendFeedback(
            request_id=body.request_id,
            label=body.label,
            rating=body.rating,
            signal=body.signal,
            feedback_id=body.feedback_id,
        ),
        caller,
    )
    return FeedbackAccepted(
        feedback_id=feedback.feedback_id,
        request_id=feedback.request_id,
        source=feedback.source,
        authority=feedback.authority,
    )
