"""How data drift detectors spend a false-alarm budget, and the shifts they are tuned for."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

TARGET_FALSE_ALERTS_PER_EVENT: Final = 1e-6
"""The promise: at most one false alert per million feature-events."""


class DataDriftSettings(BaseModel):
    """Design choices of the data drift detectors, each with its reason.

    The budget is a rate of false alerts per feature-event. It is split, Bonferroni
    style (valid whatever the dependence), over the two sides of the mean CUSUM, the
    spread CUSUM and the windowed tests. It is set at half the promise: the reference
    is a sample (10,000 rows shift z's mean by ~0.01 sd, which costs a CUSUM ~40% of its
    in-control run length) and Siegmund's approximation is good to a few percent.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    false_alerts_per_event: float = Field(
        default=TARGET_FALSE_ALERTS_PER_EVENT / 2, gt=0.0, lt=0.01
    )
    mean_up_share: float = Field(default=0.4, gt=0.0)
    mean_down_share: float = Field(default=0.4, gt=0.0)
    spread_share: float = Field(default=0.15, gt=0.0)
    windowed_share: float = Field(
        default=0.05, gt=0.0, description="Small: the windowed tests explain, CUSUMs detect."
    )
    mean_shift: float = Field(
        default=0.5,
        gt=0.0,
        description="Shift in reference sd the mean CUSUM is tuned for (k = shift / 2): "
        "smaller shifts are still found, later; larger ones within a few events.",
    )
    spread_shift: float = Field(
        default=0.25,
        gt=0.0,
        description="Shift of the spread score tuned for: a 1.5x variance moves it 0.24 sd.",
    )
    cap_factor: float = Field(
        default=2.0,
        ge=1.0,
        description="Levels are capped at cap_factor * h, so after a drift ends a level "
        "drains to the closing level in about (cap_factor - close_factor) * h / k events.",
    )
    close_factor: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="An episode closes once every level is at or below close_factor * h: "
        "from there a re-crossing under no drift is as rare as exp(-k h) (~0.1%).",
    )
    window_events: int = Field(default=500, ge=20, description="Events per windowed test.")
    score_bins: int = Field(
        default=32, ge=4, le=255, description="Equal-probability bins of the windowed tests."
    )
    top_unseen: int = Field(default=10, ge=0, le=1000)

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> DataDriftSettings:
        total = self.mean_up_share + self.mean_down_share + self.spread_share
        if abs(total + self.windowed_share - 1.0) > 1e-9:
            raise ValueError("the budget shares must sum to 1")
        return self

    def in_control_run_lengths(self) -> tuple[float, float, float]:
        """Events between false alarms per feature for mean up, mean down and spread."""
        rate = self.false_alerts_per_event
        return (
            1.0 / (rate * self.mean_up_share),
            1.0 / (rate * self.mean_down_share),
            1.0 / (rate * self.spread_share),
        )

    def window_fdr_level(self, features: int, events: int) -> float:
        """Benjamini-Hochberg level q for one window over `features` features of `events`
        events: under no drift BH's chance of any rejection is at most q, so this spends
        the windowed share of the budget on the window's feature-events."""
        return min(0.5, self.false_alerts_per_event * self.windowed_share * features * events)
