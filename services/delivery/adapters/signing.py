"""Standard Webhooks signatures (https://www.standardwebhooks.com), made with its library."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from math import floor

from standardwebhooks import Webhook

from shared.jobstore.webhook_secrets import new_webhook_secret

__all__ = ["WebhookSigner", "new_webhook_secret", "webhook_id_for"]
MAX_SIGNERS = 10_000


def webhook_id_for(request_id: str) -> str:
    """The same id for every attempt of a job, so receivers can drop duplicates by it.

    A hash rather than the request id itself keeps the header to a fixed, safe alphabet.
    """
    return "msg_" + hashlib.sha256(request_id.encode()).hexdigest()[:32]


class WebhookSigner:
    """Signs a body for one attempt; each attempt gets a fresh timestamp and signature.

    A subscriber's own secrets sign its webhooks; during a rotation there are two, and the
    header carries both signatures, space-separated, as the specification provides.
    Webhooks of jobs without a subscriber secret are signed with the default secret.
    """

    def __init__(self, default_secret: str) -> None:
        self._default = default_secret
        self._webhooks: dict[str, Webhook] = {}

    def _webhook(self, secret: str) -> Webhook:
        webhook = self._webhooks.get(secret)
        if webhook is None:
            if len(self._webhooks) >= MAX_SIGNERS:
                self._webhooks.clear()
            webhook = self._webhooks[secret] = Webhook(secret)
        return webhook

    def headers(
        self,
        *,
        webhook_id: str,
        body: bytes,
        secrets: Sequence[str] = (),
        now: datetime | None = None,
    ) -> dict[str, str]:
        """`webhook-id`, `webhook-timestamp` and `webhook-signature` for `body`, signed with
        each of `secrets` (the default secret when there are none)."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        data = body.decode()
        signatures = [
            self._webhook(secret).sign(msg_id=webhook_id, timestamp=moment, data=data)
            for secret in (secrets or [self._default])
        ]
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(floor(moment.timestamp())),
            "webhook-signature": " ".join(signatures),
        }
