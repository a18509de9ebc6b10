"""The gateway's prediction use cases: submit a prediction job, look a job up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from opentelemetry import trace

from services.gateway.domain.serving import (
    MODEL_NAME_RULE,
    NoProductionVersion,
    is_model_name,
    may_read,
    version_to_validate,
)
from services.gateway.service_layer.errors import (
    GatewayError,
    InvalidInput,
    NoDeployment,
    RequestIdConflict,
    Unavailable,
    UnknownJob,
    UnknownModel,
)
from services.gateway.service_layer.ports import JobRepository, MessagePublisher, ModelCatalog
from shared.clients.authentication import Caller
from shared.contracts import Callback, PredictionRequest
from shared.contracts.base import FeatureValue, utc_now
from shared.jobstore.views import JobView
from shared.topics import REQUESTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitPrediction:
    """A caller asks for a prediction; `request_id` is the idempotency key."""

    model: str
    request_id: str
    inputs: dict[str, FeatureValue]
    owner: str
    """Name of the API key submitting it: only it (or an admin) may read the job."""
    version: int | None = None
    callback: Callback | None = None
    routing_key: str | None = None


@dataclass(frozen=True)
class Accepted:
    """The job a submission refers to; `replayed` when an earlier submission created it."""

    job: JobView
    replayed: bool


class PredictionGateway:
    """Validates jobs against the serving signature, records them, and publishes them."""

    def __init__(
        self,
        *,
        catalog: ModelCatalog,
        jobs: JobRepository,
        publisher: MessagePublisher,
        range_tolerance: float = 0.0,
        republish_pending_after: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._catalog = catalog
        self._jobs = jobs
        self._publisher = publisher
        self._range_tolerance = range_tolerance
        self._republish_pending_after = republish_pending_after
        self._clock = clock

    async def submit_prediction(self, command: SubmitPrediction) -> Accepted:
        """Accept a job once: a retried submission answers the same without publishing again."""
        span = trace.get_current_span()
        span.set_attribute("modelbus.request_id", command.request_id)
        span.set_attribute("modelbus.model", command.model)
        if not is_model_name(command.model):
            raise UnknownModel(f"no model named {command.model!r} can exist: {MODEL_NAME_RULE}")
        existing = await self._jobs.find(command.request_id)
        if existing is not None:
            return await self._replay(existing, command)

        version = await self._validate(command)
        span.set_attribute("modelbus.validated_version", version)
        request = _request(command)
        job, created = await self._jobs.create_pending(request, command.owner)
        if not created:
            return await self._replay(job, command)
        try:
            await self._publish_request(request)
        except GatewayError:
            # Without this a retry would find the job and never publish it.
            await self._jobs.discard_pending(request.request_id)
            log.exception(
                "publishing a prediction request failed",
                extra={"request_id": request.request_id, "model": request.model},
            )
            raise
        log.info(
            "prediction request accepted",
            extra={"request_id": request.request_id, "model": request.model, "version": version},
        )
        return Accepted(job=job, replayed=False)

    async def _validate(self, command: SubmitPrediction) -> int:
        """The version whose signature the inputs fit; raises with every problem otherwise."""
        deployment = await self._catalog.deployment(command.model)
        try:
            version = version_to_validate(deployment, command.version)
        except NoProductionVersion:
            raise NoDeployment(
                f"model {command.model!r} has no production version yet; promote one, "
                "or pin a version in the request"
            ) from None
        signature = await self._catalog.signature(command.model, version)
        problems = signature.check(command.inputs, range_tolerance=self._range_tolerance)
        if problems:
            raise InvalidInput(
                f"inputs do not fit version {version} of {command.model!r}: "
                + "; ".join(problem.message for problem in problems),
                details=[problem.model_dump() for problem in problems],
            )
        return version

    async def job(self, request_id: str, caller: Caller) -> JobView:
        """The job, if this caller may see it; another key's job looks like no job at all."""
        job = await self._jobs.find(request_id)
        if job is None or not may_read(caller, job.owner):
            raise UnknownJob(f"no job with request id {request_id!r}")
        return job

    async def _publish_request(self, request: PredictionRequest) -> None:
        """Publish to `requests`; any failure but our own errors becomes Unavailable."""
        try:
            await self._publisher.publish(REQUESTS, request, key=request.partition_key)
        except GatewayError:
            raise
        except Exception as error:
            raise Unavailable(
                "the request could not be queued (Kafka unavailable); retry with the same "
                "request_id"
            ) from error

    async def _replay(self, job: JobView, command: SubmitPrediction) -> Accepted:
        """The job a retry refers to; a job pending for long is published again, in case
        the first attempt died between recording and publishing it."""
        if job.owner is not None and job.owner != command.owner:
            raise RequestIdConflict(
                f"request id {command.request_id!r} is already taken; use a new request id"
            )
        if job.model != command.model:
            raise RequestIdConflict(
                f"request id {command.request_id!r} was already used for model {job.model!r}; "
                "use a new request id"
            )
        if job.status == "pending" and self._clock() - job.created_at >= (
            self._republish_pending_after
        ):
            await self._validate(command)
            await self._publish_request(_request(command))
            log.warning(
                "a long-pending job was published again on a retry",
                extra={"request_id": job.request_id, "model": job.model},
            )
        return Accepted(job=job, replayed=True)


def _request(command: SubmitPrediction) -> PredictionRequest:
    return PredictionRequest(
        request_id=command.request_id,
        model=command.model,
        version=command.version,
        inputs=command.inputs,
        callback=command.callback,
        routing_key=command.routing_key,
    )
