"""Concurrent requests for the same key share one call instead of racing."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """At most one call in flight per key; later callers await the same result.

    The call runs as its own task, so a caller that is cancelled does not cancel it
    for the others.
    """

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, call: Coroutine[Any, Any, V]) -> V:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(call)
            self._running[key] = task
            task.add_done_callback(lambda _done: self._running.pop(key, None))
        else:
            call.close()
        return await asyncio.shield(task)
