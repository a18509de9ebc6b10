"""A receiver's answer is data from outside: whatever it holds, the store keeps working."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from shared.kafka.codec import decode
from shared.topics import DEAD_LETTERS
from tests.integration.delivery.support import prediction, serve_app
from tests.support.topic_reader import read_records

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

HOSTILE_BODY = b"\x00\x00internal\x00error \xff\xfe\xc3(" + b"\x00" * 1000
WELL_BEHAVED_JOBS = 20


def nul_answering_app() -> FastAPI:
    """Answers 500 with NUL bytes and broken UTF-8 on /hostile, 204 everywhere else."""
    app = FastAPI()

    @app.post("/{path:path}")
    async def receive(request: Request, path: str) -> Response:
        await request.body()
        if path == "hostile":
            return Response(HOSTILE_BODY, status_code=500, media_type="text/plain")
        return Response(status_code=204)

    return app


async def test_a_receiver_answering_nul_bytes_is_retried_and_dead_lettered_like_any_other(
    delivery_factory: Callable[..., Any], database_url: str
) -> None:
    with serve_app(nul_answering_app()) as url:
        async with delivery_factory(
            jobs_database_url=database_url, webhook_allowlist=["127.0.0.1"], max_attempts=3
        ) as harness:
            # Published together, so their first outcomes share the store's transactions.
            await harness.publish(prediction("hostile", f"{url}/hostile"))
            for n in range(WELL_BEHAVED_JOBS):
                await harness.publish(prediction(f"fine-{n}", f"{url}/fine"))

            hostile = await harness.job_in_state("hostile", "dead", timeout=30)
            fine = [
                await harness.job_in_state(f"fine-{n}", "delivered", timeout=30)
                for n in range(WELL_BEHAVED_JOBS)
            ]
            records = await read_records(
                harness.bootstrap, harness.dead_letters_topic, expected=1, timeout=15
            )

    assert [a.status_code for a in hostile.delivery.attempts] == [500, 500, 500]
    errors = [a.error or "" for a in hostile.delivery.attempts]
    last_error = hostile.delivery.last_error or ""
    for text in [*errors, last_error]:
        assert "\x00" not in text
        text.encode("utf-8")  # valid UTF-8: no lone surrogates
    assert errors[0].startswith("HTTP 500 Internal Server Error: internalerror \ufffd")
    assert len(errors[0]) < 400
    assert "gave up after 3 attempts" in last_error
    # The others were recorded in the same transactions and delivered at the first attempt.
    assert all([a.status_code for a in job.delivery.attempts] == [204] for job in fine)
    [record] = records
    letter = decode(DEAD_LETTERS, record.value, record.headers)
    assert (letter.error_code, letter.key) == ("webhook_exhausted", "hostile")
    assert "\x00" not in letter.error_message
