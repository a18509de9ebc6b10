"""The drift service's HTTP API: status per model, version and subject, and the report.

Both read the `drift-state` changelog as last committed, so any replica answers for
any model. Reading needs an API key with the reader role.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from services.drift.adapters.state_view import StateView
from services.drift.entrypoints.report import render_report
from shared.clients.authentication import RegistryAuthenticator
from shared.contracts import DriftStateRecord
from shared.http_api import install_error_handlers
from shared.http_auth import CallerDep, NotFound, require
from shared.roles import Role

MODEL_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
ModelPath = Annotated[str, Path(max_length=128, pattern=MODEL_PATTERN)]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
ModelQuery = Annotated[str | None, Query(max_length=128, pattern=MODEL_PATTERN)]


class SubjectStatus(BaseModel):
    """One (kind, subject): its episode and each detector's latest statistic."""

    kind: str
    subject: str
    drifting: bool
    severity: str | None
    episodes: int
    opened_at: str | None
    detectors: dict[str, dict[str, float]]


class VersionStatus(BaseModel):
    model: str
    version: int
    updated_at: str
    subjects: list[SubjectStatus]


def status_of(record: DriftStateRecord) -> VersionStatus:
    state = record.state
    episodes: dict[str, Any] = state.get("episodes", {})
    series: dict[str, list[list[float]]] = state.get("history", {}).get("series", {})
    detectors: dict[str, dict[str, dict[str, float]]] = {}
    for name, points in series.items():
        subject, method = name.rsplit(":", 1)
        if points:
            detectors.setdefault(subject, {})[method] = {
                "statistic": points[-1][1],
                "threshold": points[-1][2],
            }
    subjects = []
    for name in sorted(set(detectors) | set(episodes)):
        kind, _, subject = name.partition(":")
        episode = episodes.get(name, {})
        is_open = bool(episode.get("open"))
        subjects.append(
            SubjectStatus(
                kind=kind,
                subject=subject,
                drifting=is_open,
                severity=episode.get("severity") if is_open else None,
                episodes=int(episode.get("number", 0)),
                opened_at=episode.get("opened_at") if is_open else None,
                detectors=detectors.get(name, {}),
            )
        )
    return VersionStatus(
        model=record.model,
        version=record.version,
        updated_at=record.written_at.isoformat(),
        subjects=subjects,
    )


def _view(request: Request) -> StateView:
    view: StateView = request.app.state.drift_view
    return view


router = APIRouter(prefix="/v1/drift", tags=["drift"])


@router.get("/status")
async def drift_status(
    request: Request, caller: CallerDep, model: ModelQuery = None
) -> list[VersionStatus]:
    """Every model version the drift service measures (or one model's), with each
    feature's and variant's episode state and latest statistics."""
    require(caller, Role.READER, "reading drift status")
    records = _view(request).latest()
    return [
        status_of(record)
        for (name, _version), record in sorted(records.items())
        if model is None or name == model
    ]


@router.get("/models/{model}/versions/{version}")
async def version_status(
    request: Request, caller: CallerDep, model: ModelPath, version: VersionPath
) -> VersionStatus:
    """One version's drift status."""
    require(caller, Role.READER, "reading drift status")
    return status_of(_record(request, model, version))


@router.get("/models/{model}/versions/{version}/report", response_class=HTMLResponse)
async def version_report(
    request: Request, caller: CallerDep, model: ModelPath, version: VersionPath
) -> HTMLResponse:
    """An HTML report with plots: reference against current distribution per feature,
    and each statistic over time. Self-contained: nothing is fetched from elsewhere."""
    require(caller, Role.READER, "reading drift reports")
    record = _record(request, model, version)
    return HTMLResponse(render_report(model, version, record.state))


def _record(request: Request, model: str, version: int) -> DriftStateRecord:
    record = _view(request).get(model, version)
    if record is None:
        raise NotFound(f"no drift measured yet for {model} version {version}")
    return record


def install_api(app: FastAPI, view: StateView, authenticator: RegistryAuthenticator) -> None:
    app.state.drift_view = view
    app.state.authenticator = authenticator
    install_error_handlers(app, service="drift")
    app.include_router(router)
