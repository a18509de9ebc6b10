"""Signatures made by delivery verify with the standardwebhooks library, and only then."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.delivery.adapters.signing import WebhookSigner, new_webhook_secret, webhook_id_for
from services.delivery.receiver import create_receiver_app

SECRET = new_webhook_secret()
BODY = json.dumps({"request_id": "r-1", "status": "ok", "label": "ä"}).encode()


def test_a_signed_body_verifies_with_the_library() -> None:
    headers = WebhookSigner(SECRET).headers(webhook_id=webhook_id_for("r-1"), body=BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(BODY, headers) == json.loads(BODY)


def test_tampering_a_wrong_secret_or_an_old_timestamp_fails_verification() -> None:
    signer = WebhookSigner(SECRET)
    headers = signer.headers(webhook_id="msg_1", body=BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY.replace(b"ok", b"no"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, headers | {"webhook-id": "msg_2"})
    stale = signer.headers(
        webhook_id="msg_1", body=BODY, now=datetime.now(UTC) - timedelta(minutes=10)
    )
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(BODY, stale)


def test_webhook_ids_are_stable_per_job_and_distinct_between_jobs() -> None:
    assert webhook_id_for("job-1") == webhook_id_for("job-1")
    assert webhook_id_for("job-1") != webhook_id_for("job-2")
    assert webhook_id_for("a:b.c_d-e").startswith("msg_")
    assert len(webhook_id_for("x" * 128)) == 36


def test_the_receiver_accepts_valid_and_rejects_invalid_signatures() -> None:
    payloads: list[dict[str, object]] = []
    app = create_receiver_app(SECRET, on_delivery=payloads.append, fail_first=1)
    headers = WebhookSigner(SECRET).headers(webhook_id="msg_abc", body=BODY)
    with TestClient(app) as client:
        assert client.post("/hooks/x", content=BODY, headers=headers).status_code == 503
        assert client.post("/hooks/x", content=BODY, headers=headers).status_code == 204
        forged = WebhookSigner(new_webhook_secret()).headers(webhook_id="msg_abc", body=BODY)
        assert client.post("/hooks/x", content=BODY, headers=forged).status_code == 401
        assert client.post("/hooks/x", content=BODY).status_code == 401
        stats = client.get("/stats").json()
    assert stats == {
        "received": 4,
        "verified": 2,
        "rejected": 2,
        "failed_on_purpose": 1,
        "accepted": 1,
        "accepted_ids": ["msg_abc"],
    }
    assert payloads == [json.loads(BODY)]


def test_a_receiver_holding_several_secrets_accepts_any_of_them_and_nothing_else() -> None:
    own, default = new_webhook_secret(), new_webhook_secret()
    client = TestClient(create_receiver_app([own, default]))

    answers = [
        client.post(
            "/hooks/x",
            content=BODY,
            headers=WebhookSigner(secret).headers(webhook_id=f"msg_{index}", body=BODY),
        ).status_code
        for index, secret in enumerate((own, default, new_webhook_secret()))
    ]

    assert answers == [204, 204, 401]
