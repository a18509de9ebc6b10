"""Exporting labelled examples as a dataset snapshot in the registry's dataset store.

The snapshot is registered with the caller's own key (publisher role), so the registry's
audit names the person who exported it. Retraining reads it from there by its hash.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from services.feedback.adapters.snapshot_store import labelled_examples
from services.feedback.domain.snapshot import to_csv
from services.feedback.entrypoints.api import ContextDep
from shared.clients.registry import RegistryCallFailed, RegistryClient
from shared.http_api import ServiceError
from shared.http_auth import ApiKeyDep, CallerDep, NotFound, Unavailable, require
from shared.roles import Role

DAY_SECONDS = 24 * 3600.0


class ExportRequest(BaseModel):
    model_config = {"extra": "forbid"}

    description: str = Field(default="", max_length=500)
    window_days: float = Field(
        default=90.0, gt=0, le=3650, description="Labels of predictions made within this window."
    )


class ExportedDataset(BaseModel):
    sha256: str
    rows: int
    columns: list[str]
    excluded_weak: int = Field(description="Weak, unreviewed labels the policy kept out.")
    dataset: dict[str, Any] = Field(description="The registry's record of the snapshot.")


class RegistryRefused(ServiceError):
    code = "registry_refused"

    def __init__(self, refused: RegistryCallFailed) -> None:
        super().__init__(f"the registry refused: {refused.message}")
        self.status_code = refused.status_code


router = APIRouter(prefix="/v1")


@router.post("/models/{model}/datasets", status_code=201, tags=["datasets"])
async def export_dataset(
    model: Annotated[str, Path(max_length=128, pattern=r"^[a-z0-9][a-z0-9._-]*$")],
    body: ExportRequest,
    caller: CallerDep,
    key: ApiKeyDep,
    context: ContextDep,
) -> ExportedDataset:
    """Snapshot the model's labelled examples as CSV (features, then the version's target
    column), hash it, and register it in the registry's dataset store."""
    require(caller, Role.PUBLISHER, "exporting training data")
    since = time.time() - body.window_days * DAY_SECONDS

    def read() -> tuple[Any, int, int]:
        policy = context.policies.policy_for(model)
        with context.reader.connect() as connection:
            return labelled_examples(
                connection, model, since=since, train_on_weak=policy.train_on_weak
            )

    examples, newest, excluded = await context.read(read)
    if not examples:
        raise NotFound(f"model {model!r} has no labelled examples to export in the window")

    def register() -> ExportedDataset:
        with RegistryClient(context.registry_url, key) as registry:
            try:
                target = str(registry.version(model, newest)["target"])
                content = to_csv(examples, target)
                stored = registry.register_dataset(
                    content,
                    model=model,
                    description=body.description or f"{len(examples)} labelled examples",
                )
            except RegistryCallFailed as refused:
                raise RegistryRefused(refused) from None
            except httpx.HTTPError as error:
                raise Unavailable(f"the registry did not answer: {error}") from None
        return ExportedDataset(
            sha256=hashlib.sha256(content).hexdigest(),
            rows=len(examples),
            columns=next(csv.reader(io.StringIO(content.decode()))),
            excluded_weak=excluded,
            dataset=stored,
        )

    return await context.read(register)
