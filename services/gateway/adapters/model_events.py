"""Follows `model-events` from the end, so cached signatures change as soon as deployments do.

Every gateway process reads every event (no consumer group): each holds its own cache.
It never commits offsets; after a (re)connect it starts at the end again and drops the
whole cache, because events published while it was away are not replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Literal

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from shared.contracts import ModelEvent
from shared.kafka.codec import UndecodableMessage, decode
from shared.topics import MODEL_EVENTS

log = logging.getLogger(__name__)
ListenerState = Literal["starting", "listening", "retrying", "stopped"]
MAX_BACKOFF_SECONDS = 10.0
ASSIGNMENT_TIMEOUT_SECONDS = 10.0


class ModelEventsListener:
    """Calls `on_event` for each model event, and `on_gap` whenever events may have been missed."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        client_id: str,
        on_event: Callable[[ModelEvent], None],
        on_gap: Callable[[], None],
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._client_id = client_id
        self._on_event = on_event
        self._on_gap = on_gap
        self._task: asyncio.Task[None] | None = None
        self.state: ListenerState = "starting"
        self.events_seen = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="model-events-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.state = "stopped"

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
            )
            try:
                await consumer.start()
                await self._position_at_end(consumer)
                self._on_gap()
                self.state = "listening"
                backoff = 0.5
                log.info("following model events", extra={"topic": self._topic})
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except (KafkaError, RuntimeError) as error:
                self.state = "retrying"
                log.warning(
                    "model-events not reachable; reconnecting", extra={"error": repr(error)}
                )
            except Exception:
                self.state = "retrying"
                log.exception("model-events listener failed; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _position_at_end(self, consumer: AIOKafkaConsumer) -> None:
        """Take every partition and resolve the end offsets, so nothing after now is missed."""
        if self._topic not in await consumer.topics():
            raise RuntimeError(f"topic {self._topic!r} does not exist (yet)")
        consumer.subscribe([self._topic])  # without a group: every partition, here
        deadline = asyncio.get_running_loop().time() + ASSIGNMENT_TIMEOUT_SECONDS
        while not consumer.assignment():
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"no partitions of {self._topic!r} were assigned")
            await asyncio.sleep(0.05)
        assigned = sorted(consumer.assignment())
        await consumer.seek_to_end(*assigned)
        for partition in assigned:
            await consumer.position(partition)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    self._handle(record.value, record.headers)

    def _handle(self, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> None:
        self.events_seen += 1
        try:
            event = decode(MODEL_EVENTS, value, headers)
        except UndecodableMessage as unreadable:
            # The model it concerns is unknown, so nothing cached can be trusted.
            log.warning(
                "unreadable model event; dropping every cached signature",
                extra={"code": unreadable.code, "reason": unreadable.message},
            )
            self._on_gap()
            return
        self._on_event(event)
