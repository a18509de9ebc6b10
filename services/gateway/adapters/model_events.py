"""The gateway's reactions to model events: drop the cached signatures they make stale."""

from __future__ import annotations

from collections.abc import Callable

from shared.contracts import ModelEvent
from shared.kafka.codec import UndecodableMessage
from shared.kafka.model_events import ModelEventsFollower
from shared.kafka.security import PLAINTEXT, KafkaSecurity


def signature_invalidator(
    *,
    bootstrap: str,
    topic: str,
    client_id: str,
    invalidate: Callable[[str], None],
    invalidate_all: Callable[[], None],
    security: KafkaSecurity = PLAINTEXT,
) -> ModelEventsFollower:
    """A follower that drops one model's cache entry per event, and everything on a gap.

    Events published while the gateway was disconnected are not replayed, so each
    (re)connect drops the whole cache; an unreadable event might concern any model.
    """

    async def on_synced() -> None:
        invalidate_all()

    async def on_event(event: ModelEvent) -> None:
        invalidate(event.model)

    async def on_unreadable(_unreadable: UndecodableMessage) -> None:
        invalidate_all()

    return ModelEventsFollower(
        bootstrap=bootstrap,
        topic=topic,
        client_id=client_id,
        on_synced=on_synced,
        on_event=on_event,
        on_unreadable=on_unreadable,
        security=security,
    )
