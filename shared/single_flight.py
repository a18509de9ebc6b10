"""One fetch per key at a time, shared by every request that needs it meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """A burst of requests on a cold cache makes one upstream call, not one per request."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        future = self._running.get(key)
        if future is None:
            future = asyncio.ensure_future(fetch())
            self._running[key] = future
            future.add_done_callback(lambda done: self._forget(key, done))
        # A caller that gives up (client disconnect) must not cancel the others' fetch.
        return await asyncio.shield(future)

    def _forget(self, key: K, done: asyncio.Future[V]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved here, so an error nobody awaited is not logged twice
