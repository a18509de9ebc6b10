"""The sketcher: a micro-batch of the streams in, one small sketch per model version out.

Requests name no version unless pinned; their inputs are measured against the version
serving production when they are read. Predictions and labels carry their version and
variant. A sketch covers one source partition, so its offsets say exactly what it holds.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from shared.contracts import DriftSketch, SketchSource
from shared.contracts.base import FeatureValue
from shared.contracts.drift_sketches import SketchStream
from shared.kafka.stream_fields import (
    ClassifierFields,
    LabelFields,
    PredictionFields,
    RegressorFields,
    RequestFields,
)

log = logging.getLogger(__name__)

Output = ClassifierFields | RegressorFields


class References(Protocol):
    async def production_version(self, model: str) -> int | None: ...
    async def reference(self, model: str, version: int) -> Any | None: ...


class Sketching(Protocol):
    """The drift domain's per-batch summaries of each stream."""

    def requests(
        self, reference: Any, inputs: Sequence[Mapping[str, FeatureValue]]
    ) -> dict[str, Any]: ...
    def predictions(self, reference: Any, outputs: Sequence[Output]) -> dict[str, Any]: ...
    def labels(self, reference: Any, correct: Sequence[bool]) -> dict[str, Any]: ...


class StreamRecord(NamedTuple):
    """One decoded record and where it was read (a tuple: one is made per record, and a
    frozen dataclass costs three times as much to make)."""

    stream: SketchStream
    topic: str
    partition: int
    offset: int
    fields: RequestFields | PredictionFields | LabelFields


@dataclass
class _Group:
    """One group's records; its bounds are read once, when it is sketched."""

    offsets: list[int] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)

    def add(self, offset: int, at: datetime, item: Any) -> None:
        self.offsets.append(offset)
        self.times.append(at)
        self.items.append(item)

    @property
    def first_offset(self) -> int:
        return min(self.offsets)

    @property
    def last_offset(self) -> int:
        return max(self.offsets)

    @property
    def first_at(self) -> datetime:
        return min(self.times)

    @property
    def last_at(self) -> datetime:
        return max(self.times)


GroupKey = tuple[SketchStream, str, int, str, int | None, str | None]
"""(stream, topic, partition, model, version, variant)"""


@dataclass
class SketchCounts:
    sketches: int = 0
    skipped_no_reference: int = 0
    skipped_not_measured: int = 0
    labels_repeated: int = 0


class RecentIds:
    """The last `capacity` ids of committed batches, and those of the batch at hand.

    The feedback service republishes a label with the same `label_id` after a crash
    (at-least-once); soon after, and on the same `labels` partition (keyed by request), so
    a bounded memory catches it before it counts twice. Ids join the memory only when
    their batch's transaction commits: a batch processed again after a failed one must
    not find its own labels already seen.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._pending: set[str] = set()

    def begin(self) -> None:
        self._pending = set()

    def seen(self, identifier: str) -> bool:
        """Whether `identifier` came before (committed, or earlier in this batch)."""
        if identifier in self._ids or identifier in self._pending:
            return True
        self._pending.add(identifier)
        return False

    def commit(self) -> None:
        for identifier in self._pending:
            self._ids[identifier] = None
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        self._pending = set()


class Sketcher:
    def __init__(
        self, references: References, sketching: Sketching, *, remembered_labels: int = 200_000
    ) -> None:
        self._references = references
        self._sketching = sketching
        self._labels_seen = RecentIds(remembered_labels)
        self.counts = SketchCounts()

    async def sketch(self, records: Sequence[StreamRecord]) -> list[DriftSketch]:
        """One batch's sketches; call `committed` once its transaction has committed."""
        self._labels_seen.begin()
        groups: dict[GroupKey, _Group] = {}
        for record in records:
            grouped = self._groupable(record)
            if grouped is None:
                self.counts.skipped_not_measured += 1
                continue
            key, at, item = grouped
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group()
            group.add(record.offset, at, item)
        sketches = []
        for key, group in groups.items():
            sketch = await self._sketch_group(key, group)
            if sketch is not None:
                sketches.append(sketch)
        self.counts.sketches += len(sketches)
        return sketches

    def committed(self) -> None:
        self._labels_seen.commit()

    def _groupable(self, record: StreamRecord) -> tuple[GroupKey, datetime, Any] | None:
        fields = record.fields
        where = (record.topic, record.partition)
        if isinstance(fields, RequestFields):
            key: GroupKey = ("requests", *where, fields.model, fields.version, None)
            return key, fields.created_at, fields.inputs
        if isinstance(fields, PredictionFields):
            if fields.status != "ok" or fields.output is None:
                return None
            key = ("predictions", *where, fields.model, fields.version, fields.variant)
            return key, fields.created_at, fields.output
        if fields.correct is None or fields.strength != "label" or fields.conflicting:
            return None  # weak or disputed evidence is not ground truth for an error rate
        if self._labels_seen.seen(fields.label_id):
            self.counts.labels_repeated += 1
            return None
        key = ("labels", *where, fields.model, fields.version, fields.variant)
        return key, fields.labelled_at, fields.correct

    async def _sketch_group(self, key: GroupKey, group: _Group) -> DriftSketch | None:
        stream, topic, partition, model, version, variant = key
        if version is None:
            version = await self._references.production_version(model)
        reference = (
            await self._references.reference(model, version) if version is not None else None
        )
        if reference is None or version is None:
            self.counts.skipped_no_reference += len(group.items)
            return None
        if stream == "requests":
            body = self._sketching.requests(reference, group.items)
        elif stream == "predictions":
            body = self._sketching.predictions(reference, group.items)
        else:
            body = self._sketching.labels(reference, group.items)
        variant_part = variant or "-"
        return DriftSketch(
            sketch_id=f"{stream}:{topic}:{partition}:{group.first_offset}-{group.last_offset}:"
            f"{model}:{version}:{variant_part}",
            model=model,
            version=version,
            variant=variant,
            stream=stream,
            source=SketchSource(
                topic=topic,
                partition=partition,
                first_offset=group.first_offset,
                last_offset=group.last_offset,
            ),
            events=len(group.items),
            first_at=group.first_at,
            last_at=group.last_at,
            body=body,
        )
