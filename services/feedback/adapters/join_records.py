"""How the join writes labels at the stream's rate: with orjson straight from the stored
row (times included), with the constant headers built once. What it reads of requests
and predictions is `shared.kafka.stream_fields`."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import orjson

from shared.kafka.codec import OutgoingRecord
from shared.kafka.headers import CONTENT_TYPE, SPEC_VERSION, TRACEPARENT, Headers
from shared.topics import LABELS


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
