"""The seal an inference worker puts on a callback it copied from a request it served.

Delivery sends a webhook only to a callback the platform accepted: one the gateway
recorded for the job, or one sealed with the key workers and delivery share. A record
forged on `predictions` carries no valid seal, so it cannot make the platform sign and
send anything to a URL of the forger's choosing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def seal_callback(key: bytes, request_id: str, callback_url: str) -> str:
    """HMAC-SHA256 of the request id and the callback URL, base64url without padding."""
    digest = hmac.new(key, f"{request_id}\n{callback_url}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def is_sealed(key: bytes, request_id: str, callback_url: str, seal: str | None) -> bool:
    """Whether `seal` is this key's seal of the request id and URL (constant time)."""
    if not seal:
        return False
    return hmac.compare_digest(seal_callback(key, request_id, callback_url), seal)
