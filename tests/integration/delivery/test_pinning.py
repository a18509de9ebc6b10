"""The sender connects only to the checked addresses, follows no redirect, keeps its deadline.

Real sockets, all on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from services.delivery.adapters.http_sender import WebhookSender
from services.delivery.adapters.signing import WebhookSigner, new_webhook_secret
from services.delivery.domain.callback_policy import CallbackTarget, parse_callback_url
from tests.integration.delivery.support import run_receiver, serve_app

LOOPBACK = [ipaddress.ip_address("127.0.0.1")]
BODY = b'{"request_id":"pin-1"}'


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    client = WebhookSender(
        request_timeout_seconds=0.8, connect_timeout_seconds=0.5, max_connections=4
    )
    try:
        yield client
    finally:
        await client.aclose()


async def test_the_connection_goes_to_the_pinned_address_not_to_dns(
    sender: WebhookSender,
) -> None:
    secret = new_webhook_secret()
    with run_receiver(secret) as receiver:
        port = int(receiver.url.rsplit(":", 1)[1])
        # `.test` names never resolve: reaching the receiver proves the pin was used.
        target = parse_callback_url(f"http://hooks.rebind.test:{port}/hooks/pinned")
        headers = WebhookSigner(secret).headers(webhook_id="msg_pin", body=BODY)
        result = await sender.post(target, LOOPBACK, body=BODY, headers=headers)
    assert (result.status_code, result.error) == (204, None)
    assert receiver.stats.verified == 1
    assert sender.network.connect_attempts == 1


async def test_a_url_host_other_than_the_checked_one_is_refused_before_connecting(
    sender: WebhookSender,
) -> None:
    with run_receiver(new_webhook_secret()) as receiver:
        port = int(receiver.url.rsplit(":", 1)[1])
        # As if a parser saw `127.0.0.1` where httpx sees `localhost`.
        disagreeing = CallbackTarget(
            url=f"http://localhost:{port}/x", scheme="http", host="127.0.0.1", port=port
        )
        result = await sender.post(disagreeing, LOOPBACK, body=BODY, headers={})
        wrong_port = CallbackTarget(
            url=f"http://127.0.0.1:{port}/x", scheme="http", host="127.0.0.1", port=port + 1
        )
        second = await sender.post(wrong_port, LOOPBACK, body=BODY, headers={})
    assert result.status_code is None and second.status_code is None
    assert result.error is not None and "not the callback host that was checked" in result.error
    assert receiver.stats.received == 0
    assert sender.network.connect_attempts == 0 and sender.network.refused == 2


async def test_redirects_are_not_followed(sender: WebhookSender) -> None:
    hits: list[str] = []
    app = FastAPI()

    @app.post("/start")
    def start(request: Request) -> Response:
        hits.append("start")
        return RedirectResponse(f"{request.base_url}elsewhere", status_code=307)

    @app.post("/elsewhere")
    def elsewhere() -> Response:
        hits.append("elsewhere")
        return Response(status_code=204)

    with serve_app(app) as url:
        result = await sender.post(
            parse_callback_url(f"{url}/start"), LOOPBACK, body=BODY, headers={}
        )
    assert result.status_code == 307
    assert result.error is not None and "not followed" in result.error
    assert hits == ["start"]


async def test_a_slow_receiver_hits_the_deadline(sender: WebhookSender) -> None:
    app = FastAPI()

    @app.post("/slow")
    async def slow() -> Response:
        await asyncio.sleep(1.5)
        return Response(status_code=204)

    with serve_app(app) as url:
        result = await sender.post(
            parse_callback_url(f"{url}/slow"), LOOPBACK, body=BODY, headers={}
        )
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("timed out after")
    assert 700 <= result.duration_ms < 2500


async def test_an_ip_literal_outside_the_pin_is_refused_before_connecting(
    sender: WebhookSender,
) -> None:
    with run_receiver(new_webhook_secret()) as receiver:
        # The URL names the receiver's address, but only another address passed the check.
        target = parse_callback_url(f"{receiver.url}/hooks/literal")
        other = [ipaddress.ip_address("127.0.0.2")]
        result = await sender.post(target, other, body=BODY, headers={})
    assert result.status_code is None
    assert result.error is not None and "not the callback host that was checked" in result.error
    assert receiver.stats.received == 0
    assert sender.network.connect_attempts == 0 and sender.network.refused == 1


async def test_connections_are_reused_and_cookies_never_kept(sender: WebhookSender) -> None:
    cookies: list[str | None] = []
    app = FastAPI()

    @app.post("/hook")
    def hook(request: Request) -> Response:
        cookies.append(request.headers.get("cookie"))
        response = Response(status_code=204)
        response.set_cookie("planted", "by-the-receiver")
        return response

    with serve_app(app) as url:
        target = parse_callback_url(f"{url}/hook")
        results = await asyncio.gather(
            *(sender.post(target, LOOPBACK, body=BODY, headers={}) for _ in range(40))
        )
    assert [result.status_code for result in results] == [204] * 40
    assert cookies == [None] * 40
    # Four connections at most (the pool's size), each reused for the next webhook.
    assert 1 <= sender.network.connect_attempts <= 4
