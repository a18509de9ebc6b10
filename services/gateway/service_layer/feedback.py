"""The gateway's feedback use case: a label, rating or signal on a job, in the caller's name."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from services.gateway.domain.feedback import authority_of, label_problem, may_label
from services.gateway.service_layer.errors import (
    Forbidden,
    GatewayError,
    InvalidInput,
    Unavailable,
    UnknownJob,
)
from services.gateway.service_layer.ports import JobRepository, MessagePublisher, ModelCatalog
from shared.clients.authentication import Caller
from shared.contracts import ClassifierOutput, Feedback, Prediction
from shared.contracts.base import Label, new_id
from shared.contracts.feedback import ImplicitSignal, Rating
from shared.jobstore.views import JobView
from shared.topics import FEEDBACK

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendFeedback:
    """A caller's feedback on a job: exactly one of label, rating and signal."""

    request_id: str
    label: Label | None = None
    rating: Rating | None = None
    signal: ImplicitSignal | None = None
    feedback_id: str | None = None
    """Idempotency key downstream; a new one when not given."""


class FeedbackIntake:
    """Checks who may label a job and that a label fits its answer, then publishes it."""

    def __init__(
        self, *, catalog: ModelCatalog, jobs: JobRepository, publisher: MessagePublisher
    ) -> None:
        self._catalog = catalog
        self._jobs = jobs
        self._publisher = publisher

    async def submit(self, command: SendFeedback, caller: Caller) -> Feedback:
        """Publish feedback on a job this caller may label, with the caller's key name as
        its source; the feedback service joins it to its prediction."""
        job = await self._jobs.find(command.request_id)
        if job is None:
            raise UnknownJob(f"no job with request id {command.request_id!r}")
        if not may_label(caller, job.owner):
            raise Forbidden(
                f"job {command.request_id!r} was not submitted with key {caller.name!r}; only "
                "the key that submitted a job, or a reviewer, may send feedback on it"
            )
        if command.label is not None:
            await self._check_label(job, command.label)
        feedback = Feedback(
            feedback_id=command.feedback_id or new_id(),
            request_id=command.request_id,
            label=command.label,
            rating=command.rating,
            signal=command.signal,
            source=caller.name,
            authority=authority_of(caller),
        )
        await self._publish(feedback)
        return feedback

    async def _check_label(self, job: JobView, label: Label) -> None:
        """Once the job has its answer, an explicit label must be one the model could give."""
        prediction = _answer_of(job)
        if prediction is None or prediction.output is None:
            return
        output = prediction.output
        classes: list[str] = []
        if isinstance(output, ClassifierOutput):
            classes = list(output.probabilities)
            if not classes:  # a classifier without probabilities: its signature lists them
                signature = await self._catalog.signature(prediction.model, prediction.version)
                classes = list(signature.classes or [])
        problem = label_problem(label, output, classes)
        if problem is not None:
            raise InvalidInput(
                f"{problem} (job {job.request_id!r}, version {prediction.version} of "
                f"{prediction.model!r})",
                details={"field": "label", "classes": sorted(classes) or None},
            )

    async def _publish(self, feedback: Feedback) -> None:
        try:
            await self._publisher.publish(FEEDBACK, feedback, key=feedback.request_id)
        except GatewayError:
            raise
        except Exception as error:
            log.exception("publishing feedback failed", extra={"request_id": feedback.request_id})
            raise Unavailable("the feedback could not be queued (Kafka unavailable)") from error


def _answer_of(job: JobView) -> Prediction | None:
    """The job's recorded answer, or None while pending (or if a newer contract wrote it)."""
    if job.prediction is None:
        return None
    try:
        return Prediction.model_validate(job.prediction)
    except ValidationError:
        log.warning("a stored prediction is unreadable", extra={"request_id": job.request_id})
        return None
