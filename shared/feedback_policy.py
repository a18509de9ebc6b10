"""A model's feedback policy: what its ratings and signals mean, and what gets reviewed.

It is configuration stored with the model in the registry (set by an approver), read by
the feedback service; the registry validates it with this same model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.feedback import ImplicitSignal, Rating

Meaning = Literal["confirms", "refutes", "weakly_confirms", "weakly_refutes", "ignored"]

DEFAULT_RATINGS: dict[Rating, Meaning] = {"up": "confirms", "down": "refutes"}
DEFAULT_SIGNALS: dict[ImplicitSignal, Meaning] = {
    "copied": "weakly_confirms",
    "edited": "weakly_refutes",
    "retried": "weakly_refutes",
    "abandoned": "ignored",
}


class ReviewRules(BaseModel):
    """Which predictions are put before a human reviewer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    random_share: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of predictions sampled at random."
    )
    low_margin: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Review a classification whose top two probabilities differ by less.",
    )
    shadow_disagreement: bool = Field(
        default=True, description="Review a request whose shadow predicted another label."
    )
    negative_rating: bool = Field(default=True, description="Review a prediction rated down.")


class FeedbackPolicy(BaseModel):
    """How one model's ratings and implicit signals turn into labels, and what is reviewed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ratings: dict[Rating, Meaning] = Field(default_factory=lambda: dict(DEFAULT_RATINGS))
    signals: dict[ImplicitSignal, Meaning] = Field(default_factory=lambda: dict(DEFAULT_SIGNALS))
    train_on_weak: bool = Field(
        default=False,
        description="Whether weak evidence alone may become training data without review.",
    )
    review: ReviewRules = Field(default_factory=ReviewRules)
