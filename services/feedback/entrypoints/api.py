"""The feedback service's HTTP API: live quality, and the human review queue.

Every route needs an API key the registry knows: reading quality needs the reader role,
reviewing needs the reviewer role. A reviewer's label goes out on `feedback` like any
other (authority "reviewer", source the key's name), so it is joined, resolved and
counted by the same rules; the queue only records who decided what.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Engine

from services.feedback.adapters import review_store
from services.feedback.adapters.store import FeedbackStore
from services.feedback.domain.judging import Task, refusal
from services.feedback.service_layer.batch import PolicySource
from services.feedback.service_layer.quality import LiveQualityMeter, as_message
from shared.clients.authentication import Caller, RegistryAuthenticator
from shared.contracts import Feedback, LiveQuality
from shared.contracts.base import Label
from shared.http_api import ServiceError, install_error_handlers
from shared.http_auth import CallerDep, NotFound, require
from shared.kafka.publisher import Publisher
from shared.roles import Role
from shared.store_thread import RunInThread
from shared.topics import FEEDBACK

MAX_WINDOW_SECONDS = 90 * 24 * 3600.0
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
MODEL_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"

RequestIdPath = Annotated[str, Path(max_length=128, pattern=REQUEST_ID_PATTERN)]
"""As the contracts spell a request id: anything else names no item (and a NUL would
reach PostgreSQL, which refuses it)."""
ModelQuery = Annotated[str | None, Query(max_length=128, pattern=MODEL_PATTERN)]


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class InvalidLabel(ServiceError):
    status_code = 422
    code = "invalid_label"


@dataclass
class ApiContext:
    """What the routes need, built by the service."""

    store: FeedbackStore
    reader: Engine
    """Reads go through their own engine, which never takes the join's write lock."""
    meter: LiveQualityMeter
    authenticator: RegistryAuthenticator
    publisher: Publisher
    run: RunInThread
    """The store's writer thread, for claims and decisions."""
    read: RunInThread
    """Any thread, for reads and calls to the registry."""
    default_window_seconds: float
    lease_seconds: float
    registry_url: str
    policies: PolicySource
    clock: Any = time.time


def _context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.feedback_api
    return context


ContextDep = Annotated[ApiContext, Depends(_context)]


class ReviewItemView(BaseModel):
    request_id: str
    model: str
    version: int
    variant: str
    reasons: list[str]
    status: str
    claimed_by: str | None
    lease_until: float | None
    decided_by: str | None
    label: Any = None

    @classmethod
    def of(cls, item: review_store.ReviewItem) -> ReviewItemView:
        return cls(
            request_id=item.request_id,
            model=item.model,
            version=item.version,
            variant=item.variant,
            reasons=item.reasons.split(","),
            status=item.status,
            claimed_by=item.claimed_by,
            lease_until=item.lease_until,
            decided_by=item.decided_by,
            label=item.label,
        )


class ReviewLabel(BaseModel):
    """A reviewer's label for a claimed item."""

    model_config = {"extra": "forbid"}

    label: Label = Field(description="A class of the model, or a number for a regressor.")

    @field_validator("label")
    @classmethod
    def _storable(cls, label: Any) -> Any:
        """The join stores labels as JSON of 64-bit numbers; a longer integer never joins,
        and no database keeps a NUL in text."""
        if isinstance(label, int) and not -(2**63) <= label < 2**64:
            raise ValueError("label is an integer past 64 bits")
        if isinstance(label, str) and ("\x00" in label or len(label) > 256):
            raise ValueError("label text holds a NUL or is longer than 256 characters")
        return label


router = APIRouter(prefix="/v1")


@router.get("/quality", tags=["quality"])
async def live_quality(
    caller: CallerDep,
    context: ContextDep,
    model: ModelQuery = None,
    window_seconds: Annotated[float | None, Query(gt=0, le=MAX_WINDOW_SECONDS)] = None,
) -> list[LiveQuality]:
    """Accuracy (Wilson 95% interval) or MAE, coverage, label delay, rating ratio and
    conflicts per model, version and variant, over predictions of the window."""
    require(caller, Role.READER, "reading live quality")
    window = window_seconds or context.default_window_seconds
    figures = await context.read(context.meter.measure, window, model)
    return [as_message(quality, window) for quality in figures]


@router.get("/review/items", tags=["review"])
async def review_items(
    caller: CallerDep,
    context: ContextDep,
    model: ModelQuery = None,
    status: Annotated[
        str | None, Query(pattern="^(open|claimed|labelled|skipped)$")
    ] = review_store.OPEN,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ReviewItemView]:
    """Items of the queue, oldest first; `open` includes claims whose lease ran out."""
    require(caller, Role.REVIEWER, "reviewing")

    def read() -> list[review_store.ReviewItem]:
        with context.reader.connect() as connection:
            return review_store.listed(
                connection, model=model, status=status, now=context.clock(), limit=limit
            )

    return [ReviewItemView.of(item) for item in await context.read(read)]


@router.post("/review/items/{request_id}/claim", tags=["review"])
async def claim_item(
    request_id: RequestIdPath, caller: CallerDep, context: ContextDep
) -> ReviewItemView:
    """Take an item for `lease_seconds`; another reviewer gets 409 until it runs out."""
    require(caller, Role.REVIEWER, "reviewing")

    def claim() -> review_store.ReviewItem | None:
        with context.store.transaction() as connection:
            review_store.claim(
                connection,
                request_id,
                caller.name,
                now=context.clock(),
                lease_seconds=context.lease_seconds,
            )
            return review_store.get(connection, request_id)

    item = await context.run(claim)
    if item is None:
        raise NotFound(f"no review item for request {request_id!r}")
    if item.status != review_store.CLAIMED or item.claimed_by != caller.name:
        raise Conflict(f"item {request_id!r} is {item.status} by {item.claimed_by or 'nobody'}")
    return ReviewItemView.of(item)


@router.post("/review/items/{request_id}/label", tags=["review"])
async def label_item(
    request_id: RequestIdPath, body: ReviewLabel, caller: CallerDep, context: ContextDep
) -> ReviewItemView:
    """Label a claimed item: the label is published on `feedback` with the reviewer's
    authority, then the item is closed."""
    require(caller, Role.REVIEWER, "reviewing")
    _, task = await context.read(_held_item, context, request_id, caller)
    feedback = Feedback(
        request_id=request_id, label=body.label, source=caller.name, authority="reviewer"
    )
    problem = refusal(feedback, task)
    if problem is not None:
        raise InvalidLabel(problem)
    await context.publisher.publish(FEEDBACK, feedback, key=request_id)
    return ReviewItemView.of(
        await context.run(_decide, context, request_id, caller, review_store.LABELLED, body.label)
    )


@router.post("/review/items/{request_id}/skip", tags=["review"])
async def skip_item(
    request_id: RequestIdPath, caller: CallerDep, context: ContextDep
) -> ReviewItemView:
    """Close a claimed item without a label (the reviewer cannot tell)."""
    require(caller, Role.REVIEWER, "reviewing")
    await context.read(_held_item, context, request_id, caller)
    return ReviewItemView.of(
        await context.run(_decide, context, request_id, caller, review_store.SKIPPED, None)
    )


def _held_item(
    context: ApiContext, request_id: str, caller: Caller
) -> tuple[review_store.ReviewItem, Task]:
    with context.reader.connect() as connection:
        item = review_store.get(connection, request_id)
        if item is None:
            raise NotFound(f"no review item for request {request_id!r}")
        held = (
            item.status == review_store.CLAIMED
            and item.claimed_by == caller.name
            and (item.lease_until or 0) >= context.clock()
        )
        if not held:
            raise Conflict(f"claim item {request_id!r} first (it is {item.status})")
        tasks = context.store.tasks_of(connection, [(item.model, item.version)])
    return item, tasks.get((item.model, item.version), Task(classes=None))


def _decide(
    context: ApiContext, request_id: str, caller: Caller, status: str, label: Any
) -> review_store.ReviewItem:
    with context.store.transaction() as connection:
        text = None if label is None else str(label)
        if not review_store.decide(
            connection, request_id, caller.name, status=status, label=text, now=context.clock()
        ):
            raise Conflict(f"the claim on {request_id!r} ran out; claim it again")
        item = review_store.get(connection, request_id)
    assert item is not None
    return item


def install_api(app: FastAPI, context: ApiContext) -> None:
    """Mount the API on the service's health app."""
    from services.feedback.entrypoints.export_routes import router as export_router

    app.state.feedback_api = context
    app.state.authenticator = context.authenticator
    install_error_handlers(app, service="feedback")
    app.include_router(router)
    app.include_router(export_router)
