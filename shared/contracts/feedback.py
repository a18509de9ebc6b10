"""`feedback`: what callers and users say about a prediction after the fact."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from shared.contracts.base import Label, RequestId, Timestamp, WireModel, new_id, utc_now

Rating = Literal["up", "down"]
ImplicitSignal = Literal["copied", "edited", "retried", "abandoned"]
FeedbackAuthority = Literal["system", "user", "reviewer"]


class Feedback(WireModel):
    """Exactly one of an explicit label, a rating, or an implicit signal."""

    feedback_id: str = Field(
        default_factory=new_id, min_length=1, max_length=128, description="Idempotency key."
    )
    request_id: RequestId
    label: Label | None = None
    rating: Rating | None = None
    signal: ImplicitSignal | None = None
    source: str = Field(
        min_length=1,
        max_length=128,
        description="Who or what gave it; through the gateway, the caller's API key name.",
    )
    authority: FeedbackAuthority = Field(
        default="system",
        description="Whose word it is: a reviewer's beats a user's, which beats a system's. "
        "The gateway sets it from the caller's key; producers on Kafka speak as a system.",
    )
    created_at: Timestamp = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Self:
        require_one_kind(self)
        return self


def require_one_kind(feedback: object) -> None:
    """Feedback says exactly one thing: a label, a rating or a signal (the contract's rule,
    which the gateway's request body applies too)."""
    given = [name for name in ("label", "rating", "signal") if getattr(feedback, name) is not None]
    if len(given) != 1:
        raise ValueError(
            f"feedback needs exactly one of label, rating, signal; got {given or 'none'}"
        )
