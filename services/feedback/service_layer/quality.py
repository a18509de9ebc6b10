"""Live quality per model, version and variant: measured from the store on demand, and
published on `live-quality` at an interval for drift and retraining."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sqlalchemy import Engine

from services.feedback.adapters import quality_store
from services.feedback.domain.quality import VariantQuality, summarise
from shared.contracts import LiveQuality


class LiveQualityMeter:
    """Reads the counts of a window and turns them into quality figures."""

    def __init__(self, reader: Engine, *, clock: Callable[[], float]) -> None:
        self._reader = reader
        self._clock = clock

    def measure(self, window_seconds: float, model: str | None = None) -> list[VariantQuality]:
        since = self._clock() - window_seconds
        with self._reader.connect() as connection:
            counts = quality_store.counts_since(connection, since, model)
            return [
                summarise(
                    count,
                    quality_store.delays_since(
                        connection, since, (count.model, count.version, count.variant)
                    ),
                )
                for count in counts
            ]


def as_message(quality: VariantQuality, window_seconds: float) -> LiveQuality:
    """The `live-quality` record of one variant's figures."""
    return LiveQuality.model_validate(
        dataclasses.asdict(quality) | {"window_seconds": window_seconds}
    )
