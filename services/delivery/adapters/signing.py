"""Standard Webhooks signatures (https://www.standardwebhooks.com), made with its library."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime
from math import floor

from standardwebhooks import Webhook

SECRET_BYTES = 32


def new_webhook_secret() -> str:
    """A fresh `whsec_` secret, for stacks and demos that set one up."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def webhook_id_for(request_id: str) -> str:
    """The same id for every attempt of a job, so receivers can drop duplicates by it.

    A hash rather than the request id itself keeps the header to a fixed, safe alphabet.
    """
    return "msg_" + hashlib.sha256(request_id.encode()).hexdigest()[:32]


class WebhookSigner:
    """Signs a body for one attempt; each attempt gets a fresh timestamp and signature."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def headers(
        self, *, webhook_id: str, body: bytes, now: datetime | None = None
    ) -> dict[str, str]:
        """`webhook-id`, `webhook-timestamp` and `webhook-signature` for `body`."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        signature = self._webhook.sign(msg_id=webhook_id, timestamp=moment, data=body.decode())
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(floor(moment.timestamp())),
            "webhook-signature": signature,
        }
