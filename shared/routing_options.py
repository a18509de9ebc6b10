"""A model's serving options (the registry's `routing` field): the registry checks them
strictly when they are set, the inference workers read them when they route."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CascadeConfig(BaseModel):
    """A small model answers first; the routed (big) model only where it is unsure."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    small_version: int = Field(ge=1, description="The version that answers first.")
    min_confidence: float = Field(
        gt=0.0, le=1.0, description="Largest class probability the small answer needs to stand."
    )


class RoutingOptions(BaseModel):
    """Every serving option a model may set; unknown options are refused, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cascade: CascadeConfig | None = None
