"""Follows `model-events` from the end, for every process that caches registry state.

Every process reads every event (no consumer group, no commits). On each (re)connect it
first pins the end of the topic, then calls `on_synced` (the place to refetch or drop what
it caches), then hands over the events after the pinned position in order: nothing
published meanwhile is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from shared.contracts import ModelEvent
from shared.kafka.codec import UndecodableMessage, decode
from shared.kafka.security import PLAINTEXT, KafkaSecurity
from shared.runtime.retry import backoff_seconds
from shared.topics import MODEL_EVENTS

log = logging.getLogger(__name__)
ListenerState = Literal["starting", "listening", "retrying", "stopped"]
FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 10.0


class ModelEventsFollower:
    """Calls `on_synced` after each (re)connect and `on_event` for each event after it."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        client_id: str,
        on_synced: Callable[[], Awaitable[None]],
        on_event: Callable[[ModelEvent], Awaitable[None]],
        on_unreadable: Callable[[UndecodableMessage], Awaitable[None]],
        poll_timeout_ms: int = 250,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._topic = topic
        self._client_id = client_id
        self._on_synced = on_synced
        self._on_event = on_event
        self._on_unreadable = on_unreadable
        self._poll_timeout_ms = poll_timeout_ms
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()
        self.state: ListenerState = "starting"
        self.events_seen = 0

    def start(self) -> None:
        """Start following; `synced` is set once `on_synced` has run the first time."""
        self._task = asyncio.create_task(self._run(), name="model-events-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.state = "stopped"

    async def _run(self) -> None:
        failures = 0
        while True:
            # Subscribed without a group: aiokafka assigns every partition of the topic
            # (and start() fails if the topic does not exist).
            consumer = AIOKafkaConsumer(
                self._topic,
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                **self._security.client_options(),
            )
            try:
                await consumer.start()
                await self._position_at_end(consumer)
                await self._on_synced()
                self.state = "listening"
                self.synced.set()
                failures = 0
                log.info("following model events", extra={"topic": self._topic})
                await self._follow(consumer)
            except asyncio.CancelledError:
                raise
            except (KafkaError, RuntimeError) as error:
                self.state = "retrying"
                log.warning(
                    "model-events not reachable; reconnecting", extra={"error": repr(error)}
                )
            except Exception:
                self.state = "retrying"
                log.exception("model-events follower failed; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            failures += 1
            await asyncio.sleep(
                backoff_seconds(failures, first=FIRST_BACKOFF_SECONDS, most=MAX_BACKOFF_SECONDS)
            )

    async def _position_at_end(self, consumer: AIOKafkaConsumer) -> None:
        """Resolve the end offset of every partition before the caller resynchronises."""
        assigned = sorted(consumer.assignment())
        if not assigned:
            raise RuntimeError(f"no partitions of {self._topic!r} were assigned")
        await consumer.seek_to_end(*assigned)
        for partition in assigned:
            await consumer.position(partition)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=self._poll_timeout_ms)
            for records in batches.values():
                for record in records:
                    await self._handle(record.value, record.headers)

    async def _handle(self, value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> None:
        self.events_seen += 1
        try:
            event = decode(MODEL_EVENTS, value, headers)
        except UndecodableMessage as unreadable:
            # Every process reads this topic, so a dead letter from each would only repeat
            # itself; the registry's outbox keeps the original.
            log.error(
                "unreadable model event",
                extra={"code": unreadable.code, "reason": unreadable.message},
            )
            await self._on_unreadable(unreadable)
            return
        await self._on_event(event)
