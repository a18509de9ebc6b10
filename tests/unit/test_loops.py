"""The loops of a service: liveness from its tasks, failures surfaced, stop in order."""

from __future__ import annotations

import asyncio

import pytest

from shared.runtime.loops import Loops, start_all_or_nothing


async def test_a_dead_loop_makes_the_service_unalive_and_its_error_surfaces() -> None:
    loops = Loops()

    async def forever() -> None:
        await asyncio.Event().wait()

    async def failing() -> None:
        raise RuntimeError("broker gone")

    loops.run(forever(), name="consumer")
    loops.run(failing(), name="sweeper")
    with pytest.raises(RuntimeError, match="broker gone"):
        await loops.wait()
    assert loops.liveness() == (False, {"status": "failed"})
    await loops.cancel()


async def test_named_loops_finish_within_their_grace_and_the_rest_is_cancelled() -> None:
    loops = Loops()
    stop = asyncio.Event()
    finished: list[str] = []

    async def consumer() -> None:
        await stop.wait()
        finished.append("consumer")

    async def sweeper() -> None:
        await asyncio.Event().wait()

    loops.run(consumer(), name="consumer")
    loops.run(sweeper(), name="sweeper")
    assert loops.liveness()[0]
    stop.set()
    await loops.finish(["consumer"], grace_seconds=1.0)
    assert finished == ["consumer"]
    await loops.cancel()
    assert loops.liveness()[0] is False


async def test_a_failed_start_stops_what_started_and_a_stopped_service_stays_stopped() -> None:
    calls: list[str] = []

    async def start() -> None:
        calls.append("start")
        raise OSError("port taken")

    async def stop() -> None:
        calls.append("stop")

    with pytest.raises(OSError, match="port taken"):
        await start_all_or_nothing("drift", stopped=False, start=start, stop=stop)
    assert calls == ["start", "stop"]
    with pytest.raises(RuntimeError, match="stopped drift service cannot be started again"):
        await start_all_or_nothing("drift", stopped=True, start=start, stop=stop)
