"""The drift service's own topics: `drift-sketches` between its two stages, `drift-state`
its changelog. Other services have no reason to read them; they are described here so
that every record on the cluster has a schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.contracts.base import ModelName, Timestamp, VersionNumber, WireModel
from shared.contracts.predictions import Variant

SketchStream = Literal["requests", "predictions", "labels"]


class SketchSource(WireModel):
    """The consumed records a sketch summarises: one partition's offsets, both ends included."""

    topic: str = Field(max_length=255)
    partition: int = Field(ge=0)
    first_offset: int = Field(ge=0)
    last_offset: int = Field(ge=0)


class DriftSketch(WireModel):
    """Sufficient statistics of one micro-batch of one stream, for one model version.

    Sketches merge: the judge adds them to its detectors in any order, and one
    drift judge per model sees every sketch of that model (the topic is keyed by model).
    """

    sketch_id: str = Field(max_length=512, description="Stable across replays of the batch.")
    model: ModelName
    version: VersionNumber
    variant: Variant | None = Field(
        default=None, description="Predictions and labels: the serving variant; requests: none."
    )
    stream: SketchStream
    source: SketchSource
    events: int = Field(ge=1, description="Records summarised.")
    first_at: Timestamp = Field(description="Creation time of the earliest record.")
    last_at: Timestamp = Field(description="Creation time of the latest record.")
    body: dict[str, Any] = Field(description="The statistics, as the drift domain lays them out.")


class DriftStateRecord(WireModel):
    """One model version's detector state, written in the transaction that consumed its
    sketches; the latest record per key is the state (the topic is compacted)."""

    model: ModelName
    version: VersionNumber
    state: dict[str, Any]
    written_at: Timestamp
