"""What is never sent: shadow answers, callbacks into private networks; bad records go aside."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.callback_seal import seal_callback
from shared.contracts import PredictionRequest
from shared.kafka.codec import decode
from shared.topics import DEAD_LETTERS
from tests.integration.delivery.support import (
    CALLBACK_SEAL_KEY,
    prediction,
    run_receiver,
)
from tests.support.topic_reader import read_records
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka]


async def test_shadow_predictions_are_never_delivered(
    delivery_factory: Callable[..., Any], webhook_secret: str
) -> None:
    with run_receiver(webhook_secret) as receiver:
        async with delivery_factory(webhook_allowlist=["127.0.0.1"]) as harness:
            # A shadow answer alone, then a shadow and a production answer to one request.
            await harness.publish(prediction("shadow-only", receiver.hook("s"), variant="shadow"))
            await harness.publish(
                prediction("both", receiver.hook("b"), variant="shadow", label="versicolor")
            )
            await harness.publish(prediction("both", receiver.hook("b"), label="setosa"))
            await harness.publish(prediction("after", receiver.hook("a")))
            await harness.job_in_state("both", "delivered")
            await harness.job_in_state("after", "delivered")

            async def all_consumed() -> bool:
                return bool(harness.service.metrics.predictions_recorded == 4)

            await eventually(all_consumed, what="all four predictions to be consumed")
            shadow_only = await harness.job("shadow-only")
            both = await harness.job("both")

    assert shadow_only is None
    assert both is not None and both.prediction is not None
    assert both.prediction["variant"] == "production"
    assert sorted((p["request_id"], p["variant"]) for p in receiver.payloads) == [
        ("after", "production"),
        ("both", "production"),
    ]
    assert receiver.stats.received == 2


async def test_a_prediction_forged_on_the_topic_sends_nothing_to_its_callback(
    delivery_factory: Callable[..., Any], webhook_secret: str
) -> None:
    """Only a callback the gateway recorded, or one a worker sealed, gets a webhook."""
    with run_receiver(webhook_secret) as receiver:
        async with delivery_factory(webhook_allowlist=["127.0.0.1"]) as harness:
            gateway_job = PredictionRequest(
                request_id="gateway-job", model="iris", inputs={"x": 1.0}
            )
            await asyncio.to_thread(harness.service.store.create_pending, gateway_job, "app")
            forged = [
                prediction("forged-unsealed", receiver.hook("forged")),
                prediction("forged-bad-seal", receiver.hook("forged")).model_copy(
                    update={"callback_seal": "A" * 43}
                ),
                # A real seal, copied onto another request id, does not carry over.
                prediction("forged-moved-seal", receiver.hook("forged")).model_copy(
                    update={
                        "callback_seal": seal_callback(
                            CALLBACK_SEAL_KEY.encode(), "sealed", receiver.hook("forged")
                        )
                    }
                ),
                # The gateway's job had no callback: a forged answer cannot give it one.
                prediction("gateway-job", receiver.hook("forged")),
            ]
            for record in forged:
                await harness.publish_as_is(record)
            await harness.publish(prediction("sealed", receiver.hook("sealed")))
            await harness.job_in_state("sealed", "delivered")

            async def all_consumed() -> bool:
                return bool(harness.service.metrics.predictions_recorded == 5)

            await eventually(all_consumed, what="all five predictions to be consumed")
            jobs = {p.request_id: await harness.job(p.request_id) for p in forged}

    assert receiver.stats.received == 1
    assert [payload["request_id"] for payload in receiver.payloads] == ["sealed"]
    for request_id, job in jobs.items():
        assert job is not None, request_id
        assert job.delivery.status == "none", request_id
        assert job.delivery.callback_url is None, request_id


async def test_callbacks_into_private_networks_are_refused_without_any_connection(
    delivery_factory: Callable[..., Any], webhook_secret: str
) -> None:
    with run_receiver(webhook_secret) as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        callbacks = {
            "to-loopback": f"http://127.0.0.1:{port}/hooks/x",  # our receiver, not allowlisted
            "to-localhost": f"http://localhost:{port}/hooks/x",  # resolves to 127.0.0.1
            "to-metadata": "http://169.254.169.254/latest/meta-data/",
            "to-private": "http://10.11.12.13:8080/hook",
            "to-mapped": "http://[::ffff:10.0.0.1]/hook",
        }
        async with delivery_factory(webhook_allowlist=[]) as harness:
            for request_id, url in callbacks.items():
                await harness.publish(prediction(request_id, url))
            jobs = {
                request_id: await harness.job_in_state(request_id, "dead")
                for request_id in callbacks
            }
            records = await read_records(
                harness.bootstrap, harness.dead_letters_topic, expected=len(callbacks), timeout=15
            )
            network = harness.service.sender.network
            metrics = await harness.service.metrics_text()

    # Refused before any socket was opened: no connection attempt, nothing received.
    assert network.connect_attempts == 0
    assert receiver.stats.received == 0
    expected_kinds = {
        "to-loopback": "loopback",
        "to-localhost": "loopback",
        "to-metadata": "link-local",
        "to-private": "private",
        "to-mapped": "private",
    }
    for request_id, job in jobs.items():
        assert job.delivery.attempts == []
        assert job.delivery.last_error is not None
        assert job.delivery.last_error.startswith("callback refused:")
        assert expected_kinds[request_id] in job.delivery.last_error
    letters = [decode(DEAD_LETTERS, record.value, record.headers) for record in records]
    assert sorted(letter.key or "" for letter in letters) == sorted(callbacks)
    assert {letter.error_code for letter in letters} == {"webhook_refused"}
    assert 'modelbus_delivery_webhooks_dead_total{reason="refused"} 5' in metrics
    assert "modelbus_delivery_connect_attempts_total 0" in metrics


async def test_unreadable_records_are_dead_lettered_and_the_next_prediction_still_delivered(
    delivery_factory: Callable[..., Any], webhook_secret: str
) -> None:
    with run_receiver(webhook_secret) as receiver:
        async with delivery_factory(webhook_allowlist=["127.0.0.1"]) as harness:
            await harness.publish_raw(b"\x00\xffnot json at all", key=b"k-1")
            await harness.publish_raw(json.dumps({"request_id": "half"}).encode(), key=b"k-1")
            await harness.publish(prediction("good", receiver.hook("g")))
            job = await harness.job_in_state("good", "delivered")
            records = await read_records(
                harness.bootstrap, harness.dead_letters_topic, expected=2, timeout=15
            )

    assert receiver.stats.accepted == 1 and receiver.payloads[0]["request_id"] == "good"
    assert job.delivery.attempts[0].status_code == 204
    letters = sorted(
        (decode(DEAD_LETTERS, r.value, r.headers) for r in records), key=lambda d: d.offset or 0
    )
    assert [letter.error_code for letter in letters] == ["malformed_json", "schema_violation"]
    assert all(letter.source_topic == harness.predictions_topic for letter in letters)
    assert all(letter.service == "delivery" and letter.key == "k-1" for letter in letters)
    assert "model" in letters[1].error_message  # names a missing field


async def test_an_unreadable_1mb_record_gets_a_truncated_dead_letter_and_delivery_moves_on(
    delivery_factory: Callable[..., Any], webhook_secret: str
) -> None:
    huge = json.dumps({"request_id": "huge", "model": "x" * 1_000_000}).encode()
    with run_receiver(webhook_secret) as receiver:
        async with delivery_factory(webhook_allowlist=["127.0.0.1"]) as harness:
            await harness.publish_raw(huge, key=b"k-2")
            await harness.publish(prediction("after-huge", receiver.hook("h")))
            await harness.job_in_state("after-huge", "delivered")
            [record] = await read_records(
                harness.bootstrap, harness.dead_letters_topic, expected=1, timeout=15
            )

    assert len(record.value) < 100_000
    letter = decode(DEAD_LETTERS, record.value, record.headers)
    assert letter.error_code == "schema_violation"
    assert f"of {len(huge)} bytes are kept" in letter.error_message
    assert letter.value is not None and base64.b64encode(huge).decode().startswith(letter.value)
