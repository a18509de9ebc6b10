"""Delivery settings refuse what would make the service unsafe or self-contradictory."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from services.delivery.adapters.signing import new_webhook_secret
from services.delivery.settings import DeliverySettings

SECRET = new_webhook_secret()


def test_defaults_and_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELBUS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("MODELBUS_WEBHOOK_ALLOWLIST", "127.0.0.1, receiver.local,10.0.0.0/8")
    monkeypatch.setenv("MODELBUS_MAX_ATTEMPTS", "5")
    settings = DeliverySettings(_env_file=None)
    assert settings.webhook_secret.get_secret_value() == SECRET
    assert settings.webhook_allowlist == ["127.0.0.1", "receiver.local", "10.0.0.0/8"]
    assert settings.allowlist.allows_host("receiver.local")
    assert settings.max_attempts == 5
    assert settings.consumer_group == "modelbus-delivery"
    assert settings.jobs_database_url.startswith("sqlite:///")
    assert SECRET not in repr(settings)


def test_the_allowlist_also_reads_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELBUS_WEBHOOK_ALLOWLIST", '["127.0.0.1", "::1"]')
    settings = DeliverySettings(webhook_secret=SECRET, _env_file=None)
    assert settings.webhook_allowlist == ["127.0.0.1", "::1"]


def test_the_secret_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELBUS_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ValidationError, match="webhook_secret"):
        DeliverySettings(_env_file=None)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("hunter2", "whsec_"),
        ("whsec_not*base64", "base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "24 to 64"),
    ],
)
def test_malformed_secrets_are_refused(secret: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DeliverySettings(webhook_secret=secret, _env_file=None)


def test_inconsistent_or_unsafe_settings_are_refused() -> None:
    base: dict[str, Any] = {"webhook_secret": SECRET, "_env_file": None}
    with pytest.raises(ValidationError, match="allowlist entry"):
        DeliverySettings(**base, webhook_allowlist=["http://x"])
    with pytest.raises(ValidationError, match="lease_seconds"):
        DeliverySettings(**base, request_timeout_seconds=30, lease_seconds=40)
    with pytest.raises(ValidationError, match="connect_timeout_seconds"):
        DeliverySettings(**base, connect_timeout_seconds=20)
    with pytest.raises(ValidationError, match="backoff_max_seconds"):
        DeliverySettings(**base, backoff_base_seconds=10, backoff_max_seconds=1)
    with pytest.raises(ValidationError, match="MODELBUS_CALLBACK_SEAL_KEY"):
        DeliverySettings(**base, environment="production")
    sealed = base | {"callback_seal_key": "k" * 32}
    with pytest.raises(ValidationError, match="PostgreSQL"):
        DeliverySettings(**sealed, environment="production")
    production = DeliverySettings(
        **sealed,
        environment="production",
        jobs_database_url="postgresql+psycopg://delivery@db/jobs",
    )
    assert production.environment == "production"
