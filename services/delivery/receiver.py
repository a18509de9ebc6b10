"""A webhook receiver that verifies Standard Webhooks signatures, for the demo and tests.

It is also the reference for callers: verify the raw body with
`standardwebhooks.Webhook(secret).verify(body, headers)` before trusting it, and drop
repeats by the `webhook-id` header (every retry of a job carries the same id).

Run it with uvicorn: `uvicorn --factory services.delivery.receiver:app_from_env`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from standardwebhooks import Webhook


@dataclass
class ReceiverStats:
    """What arrived: every POST is received, then verified or rejected."""

    received: int = 0
    verified: int = 0
    rejected: int = 0
    failed_on_purpose: int = 0
    """Verified deliveries answered 503 because of `fail_first`."""
    accepted: int = 0
    """Verified deliveries answered 204."""
    accepted_ids: list[str] = field(default_factory=list)
    """`webhook-id` of each accepted delivery, in arrival order."""

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)


def create_receiver_app(
    secret: str | Sequence[str],
    *,
    on_delivery: Callable[[dict[str, Any]], None] | None = None,
    fail_first: int = 0,
) -> FastAPI:
    """An app that answers 204 to a validly signed POST on any path and 401 otherwise.

    `secret` may be several: a receiver serving more than one subscriber (or the default
    secret besides its own) accepts a webhook any of them verifies.

    `fail_first` makes it answer 503 to the first that many verified deliveries, to show
    retries; `on_delivery` gets each accepted payload. Counts are at `GET /stats` and in
    `app.state.stats`.
    """
    webhooks = [Webhook(one) for one in ([secret] if isinstance(secret, str) else secret)]
    stats = ReceiverStats()
    lock = threading.Lock()
    app = FastAPI(title="modelbus webhook receiver", docs_url=None, redoc_url=None)
    app.state.stats = stats

    @app.post("/{path:path}")
    async def receive(request: Request, path: str) -> Response:
        body = await request.body()
        with lock:
            stats.received += 1
        try:
            payload = _verify(webhooks, body, dict(request.headers))
        except Exception as error:  # the library raises several types for bad input
            with lock:
                stats.rejected += 1
            return JSONResponse({"error": f"signature rejected: {error}"}, status_code=401)
        with lock:
            stats.verified += 1
            fail = stats.failed_on_purpose < fail_first
            if fail:
                stats.failed_on_purpose += 1
            else:
                stats.accepted += 1
                stats.accepted_ids.append(request.headers["webhook-id"])
        if fail:
            return JSONResponse({"error": "failing on purpose (fail_first)"}, status_code=503)
        if on_delivery is not None:
            on_delivery(payload)
        return Response(status_code=204)

    @app.get("/stats")
    def get_stats() -> dict[str, Any]:
        with lock:
            return stats.snapshot()

    return app


def _verify(webhooks: Sequence[Webhook], body: bytes, headers: dict[str, str]) -> Any:
    """The payload, if any of the secrets a receiver holds verifies it (the last error else)."""
    error: Exception = ValueError("no secret to verify with")
    for webhook in webhooks:
        try:
            return webhook.verify(body, headers)
        except Exception as failed:  # the library raises several types for bad input
            error = failed
    raise error


def app_from_env() -> FastAPI:
    """The receiver with its secret from `MODELBUS_WEBHOOK_SECRET` (for `uvicorn --factory`)."""
    secret = os.environ.get("MODELBUS_WEBHOOK_SECRET", "")
    if not secret:
        raise RuntimeError("set MODELBUS_WEBHOOK_SECRET to the secret the delivery service uses")
    fail_first = int(os.environ.get("MODELBUS_RECEIVER_FAIL_FIRST", "0"))
    return create_receiver_app(secret, fail_first=fail_first)
