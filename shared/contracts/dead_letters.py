"""`dead-letters`: messages a service could not handle, kept with the reason."""

from __future__ import annotations

from pydantic import Field

from shared.contracts.base import Timestamp, WireModel, utc_now


class DeadLetter(WireModel):
    """An unreadable or undeliverable message, so nothing is dropped silently."""

    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = Field(default=None, description="Original key, as text (lossy if binary).")
    value: str | None = Field(
        default=None, description="Original value, base64-encoded, so any bytes survive."
    )
    error_code: str
    error_message: str
    service: str = Field(description="The service that gave up on it.")
    failed_at: Timestamp = Field(default_factory=utc_now)
