"""One thread for a service's database writes, so the event loop never waits on them.

Every write of the process (delivery's recorded predictions, claims and attempts; the
feedback join's batches) runs on this single thread, one after another. SQLite has one
writer at a time anyway: writers in several threads only queue on its lock (sleeping in
its busy handler) and return in random order. One thread with batched work keeps the
order and wastes nothing; on PostgreSQL, batching is what makes one connection enough
(a transaction records hundreds of webhooks).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class RunInThread(Protocol):
    """Runs a blocking function off the event loop (`asyncio.to_thread` is one)."""

    def __call__(
        self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class StoreThread:
    """A single worker thread; `run` awaits a function's result from the event loop."""

    def __init__(self, name: str = "job-store") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    def close(self) -> None:
        """Finish the work handed over, then end the thread."""
        self._executor.shutdown(wait=True)
