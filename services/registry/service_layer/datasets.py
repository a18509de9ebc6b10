"""Use cases on dataset snapshots: store one (content-addressed, described once), read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.registry.adapters.blob_store import BlobStore
from services.registry.adapters.tables import Dataset, RegisteredModel
from services.registry.service_layer.context import Actor, record_change
from services.registry.service_layer.errors import InvalidInput, NotFound
from shared.roles import Role
from shared.tabular import InvalidDataset, TabularData, parse_csv

MAX_DESCRIPTION = 2000


@dataclass(frozen=True)
class Provenance:
    """Where a snapshot came from: the model it was taken for, and a word on how."""

    model: str | None = None
    description: str = ""


@dataclass(frozen=True)
class StoredDataset:
    row: Dataset
    created: bool
    """False when the same bytes were already stored: the first registration's row is kept."""


def register_dataset(
    session: Session, store: BlobStore, actor: Actor, content: bytes, provenance: Provenance
) -> StoredDataset:
    """Check the CSV as version registration checks its training data, then store it once."""
    actor.require(Role.PUBLISHER, "registering a dataset")
    if len(provenance.description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description: at most {MAX_DESCRIPTION} characters")
    if provenance.model is not None:
        _require_model(session, provenance.model)
    data = _parsed(content)
    stored = stored_dataset(session, store, content, data, provenance=provenance, actor=actor)
    if stored.created:
        record_change(
            session,
            actor,
            action="dataset.registered",
            model=provenance.model,
            reason=provenance.description,
            details={
                "sha256": stored.row.sha256,
                "size_bytes": stored.row.size_bytes,
                "row_count": stored.row.row_count,
                "columns": stored.row.columns,
            },
        )
    session.commit()
    session.refresh(stored.row)
    return stored


def stored_dataset(
    session: Session,
    store: BlobStore,
    content: bytes,
    data: TabularData,
    *,
    provenance: Provenance,
    actor: Actor,
) -> StoredDataset:
    """The dataset's row, created on first sight (in the caller's transaction, which must
    hold nothing else yet): identical data is stored once, whoever sends it and how often."""
    sha256 = store.put(content)
    existing = _by_sha256(session, sha256)
    if existing is not None:
        return StoredDataset(existing, created=False)
    row = Dataset(
        sha256=sha256,
        size_bytes=len(content),
        row_count=data.row_count,
        columns=data.column_names,
        model=provenance.model,
        description=provenance.description,
        created_by=actor.name,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        # The same bytes were registered at the same moment by another request.
        session.rollback()
        raced = _by_sha256(session, sha256)
        if raced is None:
            raise
        return StoredDataset(raced, created=False)
    return StoredDataset(row, created=True)


def _parsed(content: bytes) -> TabularData:
    try:
        return parse_csv(content)
    except InvalidDataset as error:
        raise InvalidInput(f"content: {error}") from None


def _require_model(session: Session, name: str) -> None:
    query = select(RegisteredModel.id).where(RegisteredModel.name == name)
    if session.exec(query).first() is None:
        raise InvalidInput(f"model: no model named {name!r} is registered")


def _by_sha256(session: Session, sha256: str) -> Dataset | None:
    return session.exec(select(Dataset).where(Dataset.sha256 == sha256)).first()


def get_dataset(session: Session, sha256: str) -> Dataset:
    dataset = _by_sha256(session, sha256)
    if dataset is None:
        raise NotFound(f"no dataset with SHA-256 {sha256}")
    return dataset


def list_datasets(
    session: Session, *, model: str | None, limit: int, offset: int
) -> Sequence[Dataset]:
    """Newest first, optionally only those taken for one model."""
    query = select(Dataset)
    if model is not None:
        query = query.where(Dataset.model == model)
    query = query.order_by(col(Dataset.id).desc()).offset(offset).limit(limit)
    return session.exec(query).all()
