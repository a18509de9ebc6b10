"""What the join reads of each record, and how it writes labels, at the stream's rate.

The join ingests every request and prediction, so it reads only the fields it keeps
(a tolerant reader: the contract's other fields, such as callbacks, are not its
concern, and their validation was most of the decoding cost). Labels are written with
orjson straight from the stored row (times included), with the constant headers built
once.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Annotated, Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.base import FeatureValue, Label, ModelName, RequestId, VersionNumber
from shared.contracts.predictions import PredictionStatus, Variant
from shared.kafka.codec import OutgoingRecord
from shared.kafka.headers import CONTENT_TYPE, SPEC_VERSION, TRACEPARENT, Headers
from shared.topics import LABELS

StoredVersion = Annotated[VersionNumber, Field(le=2**31 - 1)]
"""A version the store's integer columns hold (PostgreSQL's are 32-bit)."""


class _Fields(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RequestFields(_Fields):
    """What the join keeps of a `requests` record."""

    request_id: RequestId
    model: ModelName
    inputs: dict[str, FeatureValue] = Field(min_length=1)
    created_at: AwareDatetime


class ClassifierFields(_Fields):
    label: Label
    probabilities: dict[str, float]


class RegressorFields(_Fields):
    value: float


class PredictionFields(_Fields):
    """What the join keeps of a `predictions` record."""

    request_id: RequestId
    model: ModelName
    version: StoredVersion
    variant: Variant
    status: PredictionStatus
    output: ClassifierFields | RegressorFields | None = None
    created_at: AwareDatetime


class LabelEncoder:
    """`labels` records from the join's label rows: the `LabelledExample` contract's JSON.

    `ce_id` is a per-process random prefix plus a counter: unique without a UUID each.
    A batch's labels share one trace context: they come from one transaction. Times are
    datetimes, which orjson writes as the contracts do (RFC 3339 with `Z`, microseconds
    when there are any) in a fraction of `isoformat`'s time.
    """

    def __init__(self, *, topic: str, source: str) -> None:
        self.topic = topic
        self._constant: Headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_source", source.encode()),
            ("ce_type", LABELS.event_type.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        self._id_prefix = secrets.token_hex(8) + "-"
        self._ids = itertools.count()

    def encode(
        self, document: dict[str, Any], *, time: bytes, traceparent: bytes
    ) -> OutgoingRecord:
        key = str(document["request_id"]).encode()
        headers = [
            *self._constant,
            ("ce_id", f"{self._id_prefix}{next(self._ids):x}".encode()),
            ("ce_time", time),
            ("ce_subject", key),
            (TRACEPARENT, traceparent),
        ]
        return OutgoingRecord(
            self.topic, key, orjson.dumps(document, option=orjson.OPT_UTC_Z), headers
        )
