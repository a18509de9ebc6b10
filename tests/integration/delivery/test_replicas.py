"""Two delivery replicas on one PostgreSQL job store send every webhook exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from devtools.postgres_server import PostgresServer
from services.delivery.adapters.signing import webhook_id_for
from tests.integration.delivery.support import prediction, run_receiver
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
JOBS = 40


async def test_two_replicas_share_the_work_without_sending_anything_twice(
    delivery_factory: Callable[..., Any], webhook_secret: str, postgres_server: PostgresServer
) -> None:
    shared_store = postgres_server.create_database(f"jobs_{uuid.uuid4().hex[:12]}")
    settings = {
        "jobs_database_url": shared_store,
        "webhook_allowlist": ["127.0.0.1"],
        "max_concurrency": 4,
    }
    with run_receiver(webhook_secret) as receiver:
        async with delivery_factory(**settings) as first, delivery_factory(**settings) as second:
            for n in range(JOBS):
                await first.publish(prediction(f"job-{n:02d}", receiver.hook(f"{n}")))

            async def all_delivered() -> bool:
                return receiver.stats.accepted >= JOBS

            await eventually(all_delivered, timeout=30, what=f"{JOBS} webhooks")
            views = [await first.job(f"job-{n:02d}") for n in range(JOBS)]
            shares = (first.service.metrics.delivered, second.service.metrics.delivered)

    assert sorted(receiver.stats.accepted_ids) == sorted(
        webhook_id_for(f"job-{n:02d}") for n in range(JOBS)
    )
    assert receiver.stats.received == JOBS
    assert all(v is not None and len(v.delivery.attempts) == 1 for v in views)
    assert sum(shares) == JOBS
    assert min(shares) > 0, f"one replica did all the work: {shares}"
