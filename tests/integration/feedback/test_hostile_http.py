"""Path and query values no request id or model name can have get a 4xx that says so,
never a 500 from the database (PostgreSQL refuses a NUL in text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devtools.live_registry import LiveRegistry

pytestmark = [pytest.mark.kafka]


async def test_a_nul_in_a_request_id_or_model_is_refused_with_a_4xx(
    feedback_factory: Callable[..., Any], registry: LiveRegistry
) -> None:
    async with feedback_factory(registry) as harness:
        reviewer = harness.http(registry.keys["reviewer"])
        async with reviewer:
            answers = [
                await reviewer.post("/v1/review/items/a%00b/claim"),
                await reviewer.post("/v1/review/items/a%00b/skip"),
                await reviewer.post("/v1/review/items/a%00b/label", json={"label": "setosa"}),
                await reviewer.get("/v1/review/items", params={"model": "a\x00b"}),
                await reviewer.get("/v1/quality", params={"model": "a\x00b"}),
            ]

    assert [answer.status_code for answer in answers] == [422] * len(answers), [
        answer.text for answer in answers
    ]
