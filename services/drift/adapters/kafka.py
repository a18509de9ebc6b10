"""Bytes to messages and back for the drift service's two consumer loops."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.drift.adapters.changelog import StateTable
from services.drift.service_layer.judge import Judge
from services.drift.service_layer.sketcher import SketchCounts, Sketcher, StreamRecord
from shared.contracts.drift_sketches import SketchStream
from shared.kafka.codec import (
    ConsumedRecord,
    OutgoingRecord,
    UndecodableMessage,
    decode,
    decode_as,
    encode,
    warn_unreadable,
)
from shared.kafka.stream_fields import LabelFields, PredictionFields, RequestFields
from shared.topics import DRIFT_ALERTS, DRIFT_SKETCHES, LABELS, PREDICTIONS, REQUESTS, TopicSpec

log = logging.getLogger(__name__)
SERVICE = "drift"


@dataclass(frozen=True)
class TopicNames:
    """The topics as named on this cluster (with the deployment's prefix)."""

    requests: str
    predictions: str
    labels: str
    sketches: str
    state: str
    alerts: str

    @classmethod
    def with_prefix(cls, prefix: Callable[[str], str]) -> TopicNames:
        return cls(
            requests=prefix("requests"),
            predictions=prefix("predictions"),
            labels=prefix("labels"),
            sketches=prefix("drift-sketches"),
            state=prefix("drift-state"),
            alerts=prefix("drift-alerts"),
        )

    @property
    def streams(self) -> tuple[str, ...]:
        return (self.requests, self.predictions, self.labels)


class SketchProcess:
    """The sketcher's batch: decode what it measures, sketch, publish keyed by model."""

    def __init__(self, sketcher: Sketcher, topics: TopicNames) -> None:
        self._sketcher = sketcher
        self._topics = topics
        self._readers: dict[str, tuple[SketchStream, TopicSpec[Any], type[Any]]] = {
            topics.requests: ("requests", REQUESTS, RequestFields),
            topics.predictions: ("predictions", PREDICTIONS, PredictionFields),
            topics.labels: ("labels", LABELS, LabelFields),
        }
        self.unreadable = 0

    def committed(self) -> None:
        """The batch's transaction committed."""
        self._sketcher.committed()

    @property
    def sketcher_counts(self) -> SketchCounts:
        return self._sketcher.counts

    async def __call__(self, records: list[Any]) -> list[OutgoingRecord]:
        decoded = [read for record in records if (read := self._read(record)) is not None]
        sketches = await self._sketcher.sketch(decoded)
        return [
            encode(
                DRIFT_SKETCHES,
                sketch,
                key=sketch.model,
                source=SERVICE,
                topic=self._topics.sketches,
            )
            for sketch in sketches
        ]

    def _read(self, record: ConsumedRecord) -> StreamRecord | None:
        reader = self._readers.get(record.topic)
        if reader is None:
            return None
        stream, spec, fields = reader
        try:
            value = decode_as(spec, fields, record.value, record.headers)
        except UndecodableMessage as error:
            self.unreadable += 1  # the stream's own consumers dead-letter it; here it is skipped
            warn_unreadable(log, record, error)
            return None
        return StreamRecord(stream, record.topic, record.partition, record.offset, value)


class JudgeProcess:
    """The judge's batch, one transaction: alerts and new states out, sketches consumed."""

    def __init__(
        self,
        judge: Judge,
        table: StateTable,
        references: Any,
        topics: TopicNames,
        generation: Callable[[], int],
    ) -> None:
        self._judge = judge
        self._table = table
        self._references = references
        self._topics = topics
        self._generation = generation
        self.alerts_published = 0
        self.sketches_applied = 0
        self.sketches_refused = 0
        self._pending_alerts = 0

    async def __call__(self, records: list[Any]) -> list[OutgoingRecord]:
        self._table.begin()
        self._judge.begin()
        alerts = []
        generation = self._generation()
        for record in records:
            await self._table.ensure_restored(record.partition, generation)
            try:
                sketch = decode(DRIFT_SKETCHES, record.value, record.headers)
            except UndecodableMessage as error:
                warn_unreadable(log, record, error)
                continue
            reference = await self._references.reference(sketch.model, sketch.version)
            if reference is None:
                continue
            stored = self._table.get(record.partition, (sketch.model, sketch.version))
            try:
                outcome = self._judge.apply(record.partition, sketch, reference, stored)
            except (ValueError, KeyError, TypeError, IndexError) as error:
                # A sketch that decodes but does not fit its version (forged, or from a
                # sketcher of another release): skipped, never retried, never fatal.
                self.sketches_refused += 1
                log.error(
                    "a sketch that does not fit its version was skipped",
                    extra={"sketch_id": sketch.sketch_id[:200], "error": repr(error)[:500]},
                )
                continue
            self.sketches_applied += outcome.applied
            alerts.extend(outcome.alerts)
        self._judge.finish(self._table)
        outgoing = [
            encode(DRIFT_ALERTS, alert, key=alert.model, source=SERVICE, topic=self._topics.alerts)
            for alert in alerts
        ]
        self._pending_alerts = len(alerts)
        return outgoing + self._table.pending_records()

    def committed(self) -> None:
        """The batch's transaction committed: its states and alerts are out."""
        self._table.commit()
        self.alerts_published += self._pending_alerts
        self._pending_alerts = 0
