"""The Kafka publisher, connected in the background so the gateway starts before Kafka does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from services.gateway.service_layer.errors import Unavailable
from shared.contracts import WireModel
from shared.kafka.publisher import Publisher
from shared.runtime.retry import retrying
from shared.topics import TopicSpec

log = logging.getLogger(__name__)
T = TypeVar("T", bound=WireModel)
MAX_BACKOFF_SECONDS = 10.0


class BackgroundPublisher:
    """Keeps trying to start a Publisher; until it has, publishing raises Unavailable."""

    def __init__(self, factory: Callable[[], Publisher]) -> None:
        self._factory = factory
        self._publisher: Publisher | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._publisher is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="publisher-connect")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None

    async def _connect(self) -> None:
        async for attempt in retrying(
            on=(Exception,),
            log=log,
            what="connecting to Kafka",
            first=0.5,
            most=MAX_BACKOFF_SECONDS,
        ):
            with attempt:
                publisher = self._factory()
                try:
                    await publisher.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await publisher.stop()
                    raise
                self._publisher = publisher
        log.info("connected to Kafka")

    async def publish(self, spec: TopicSpec[T], message: T, *, key: str | None) -> Any:
        if self._publisher is None:
            raise Unavailable("not connected to Kafka yet; retry shortly", retry_after_seconds=2)
        return await self._publisher.publish(spec, message, key=key)
