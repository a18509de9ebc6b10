"""A service's long-running loops: started as named tasks, watched, stopped in order.

Every Kafka service runs a few loops side by side (a consumer, a sweeper, a publisher of
figures). The process must die when one of them dies, answer liveness from them, and on
SIGTERM let the consuming loops finish their batch before the rest is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any


class Loops:
    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def run(self, loop: Coroutine[Any, Any, None], *, name: str) -> None:
        self._tasks.append(asyncio.create_task(loop, name=name))

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """Alive while every loop runs: a loop only ends by failing."""
        alive = bool(self._tasks) and not any(task.done() for task in self._tasks)
        return alive, {"status": "ok" if alive else "failed"}

    async def wait(self) -> None:
        """Return when a loop ends; re-raise its error."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()

    async def finish(self, names: Iterable[str], *, grace_seconds: float) -> None:
        """Give the named loops (told to stop already) up to `grace_seconds` to end."""
        wanted = set(names)
        finishing = [task for task in self._tasks if task.get_name() in wanted]
        if finishing:
            await asyncio.wait(finishing, timeout=grace_seconds)

    async def cancel(self) -> None:
        """Cancel what still runs and wait until it has ended."""
        for task in self._tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


async def start_all_or_nothing(
    name: str,
    *,
    stopped: bool,
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
) -> None:
    """Start a service once; if starting fails part-way, stop what did start."""
    if stopped:
        raise RuntimeError(f"a stopped {name} service cannot be started again")
    try:
        await start()
    except BaseException:
        await stop()
        raise
