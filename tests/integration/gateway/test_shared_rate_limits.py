"""Rate-limit buckets in the job store's database hold across gateway replicas, on SQLite
and PostgreSQL: replicas taking from one key's bucket together get exactly its burst."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import Engine, select

from services.gateway.adapters.rate_limits import BUCKETS, DatabaseRateLimits
from services.gateway.service_layer.errors import Unavailable
from shared.db import make_engine

pytestmark = [pytest.mark.postgres]


def test_two_replicas_share_one_bucket_per_key(jobstore_engine: Engine) -> None:
    now = [1_000.0]
    replicas = [
        DatabaseRateLimits(jobstore_engine, rate=1.0, burst=5, clock=lambda: now[0])
        for _ in range(2)
    ]

    taken = [replicas[i % 2].take("key-a") for i in range(6)]
    other_key = replicas[1].take("key-b")
    now[0] += 2.0
    refilled = [replicas[i % 2].take("key-a").allowed for i in range(3)]

    assert [d.allowed for d in taken] == [True] * 5 + [False]
    assert taken[-1].retry_after == pytest.approx(1.0)
    assert other_key.allowed
    assert refilled == [True, True, False]  # 2 tokens after 2 s at 1/s


def test_a_refusal_writes_nothing(jobstore_engine: Engine) -> None:
    limits = DatabaseRateLimits(jobstore_engine, rate=1.0, burst=1, clock=lambda: 50.0)
    assert limits.take("k").allowed

    def stored() -> tuple[float, float, int]:
        with jobstore_engine.connect() as connection:
            row = connection.execute(
                select(BUCKETS.c.tokens, BUCKETS.c.updated, BUCKETS.c.version).where(
                    BUCKETS.c.key == "k"
                )
            ).one()
        return row.tokens, row.updated, row.version

    before = stored()
    refusals = [limits.take("k") for _ in range(5)]

    assert not any(d.allowed for d in refusals)
    assert stored() == before


def test_concurrent_replicas_never_give_more_than_the_burst(jobstore_engine: Engine) -> None:
    burst, threads, attempts = 30, 4, 15
    allowed: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def replica() -> None:
        limits = DatabaseRateLimits(jobstore_engine, rate=1e-6, burst=burst, clock=lambda: 7.0)
        start.wait()
        for _ in range(attempts):
            decision = limits.take("shared-key")
            with lock:
                allowed.append(decision.allowed)

    workers = [threading.Thread(target=replica) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert len(allowed) == threads * attempts
    assert allowed.count(True) == burst


async def test_the_async_check_answers_off_the_event_loop(jobstore_engine: Engine) -> None:
    limits = DatabaseRateLimits(jobstore_engine, rate=1.0, burst=2, clock=lambda: 0.0)

    decisions = await asyncio.gather(*(limits.check("async-key") for _ in range(3)))

    assert sorted(d.allowed for d in decisions) == [False, True, True]


async def test_a_database_that_does_not_answer_is_503_not_a_crash() -> None:
    unreachable = make_engine("postgresql+psycopg://modelbus@127.0.0.1:1/modelbus")
    limits = DatabaseRateLimits(unreachable, rate=1.0, burst=1)
    try:
        with pytest.raises(Unavailable, match="rate-limit database") as refused:
            await limits.check("k")
    finally:
        unreachable.dispose()

    assert refused.value.status_code == 503
    assert refused.value.headers == {"Retry-After": "1"}
