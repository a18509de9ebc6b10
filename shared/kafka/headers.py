"""CloudEvents binary-mode `ce_*` headers and the W3C `traceparent` on every record."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from opentelemetry import propagate

from shared.contracts.base import new_id, utc_now

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
TRACEPARENT = "traceparent"
_TRACEPARENT_PATTERN = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

Headers = list[tuple[str, bytes]]


def _random_traceparent() -> str:
    """A fresh unsampled trace context, for records published outside any span."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


def current_trace_headers() -> dict[str, str]:
    """The active span's W3C trace context (traceparent, tracestate), always with a traceparent."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if TRACEPARENT not in carrier:
        carrier[TRACEPARENT] = _random_traceparent()
    return carrier


def build_headers(*, event_type: str, source: str, subject: str | None = None) -> Headers:
    """Headers for a new record: CloudEvents binary mode plus the current trace context."""
    attributes = {
        "ce_specversion": SPEC_VERSION,
        "ce_id": new_id(),
        "ce_source": source,
        "ce_type": event_type,
        "ce_time": utc_now().isoformat(),
        "content-type": CONTENT_TYPE,
    }
    if subject is not None:
        attributes["ce_subject"] = subject
    attributes.update(current_trace_headers())
    return [(name, value.encode()) for name, value in attributes.items()]


@dataclass(frozen=True)
class RecordMetadata:
    """What a consumer learns from a record's headers."""

    event_id: str | None
    event_type: str | None
    source: str | None
    time: datetime | None
    traceparent: str | None

    @property
    def trace_carrier(self) -> Mapping[str, str]:
        """A carrier for `opentelemetry.propagate.extract`, to continue the producer's trace."""
        return {TRACEPARENT: self.traceparent} if self.traceparent else {}


def parse_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> RecordMetadata:
    """Read the headers leniently: a producer that omits them still gets its message read."""
    values: dict[str, str] = {}
    for name, raw in headers or ():
        if raw is None:
            continue
        try:
            values[name] = raw.decode()
        except UnicodeDecodeError:
            continue
    time_text = values.get("ce_time")
    try:
        time = datetime.fromisoformat(time_text) if time_text else None
    except ValueError:
        time = None
    traceparent = values.get(TRACEPARENT)
    if traceparent is not None and not _TRACEPARENT_PATTERN.match(traceparent):
        traceparent = None
    return RecordMetadata(
        event_id=values.get("ce_id"),
        event_type=values.get("ce_type"),
        source=values.get("ce_source"),
        time=time,
        traceparent=traceparent,
    )
