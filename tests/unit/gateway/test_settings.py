"""Gateway settings refuse what cannot work, before anything is created."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from services.gateway.bootstrap import create_app
from services.gateway.settings import GatewaySettings


def test_the_job_store_default_is_the_one_delivery_uses() -> None:
    settings = GatewaySettings(_env_file=None)

    assert settings.jobs_database_url == "sqlite:///.cache/jobs/jobs.db"
    assert (settings.gateway_host, settings.gateway_port) == ("127.0.0.1", 8080)


def test_the_app_needs_a_registry_key() -> None:
    settings = GatewaySettings(_env_file=None, registry_api_key=None)

    with pytest.raises(ValueError, match="MODELBUS_REGISTRY_API_KEY"):
        create_app(settings)


def test_production_refuses_sqlite_for_the_job_store() -> None:
    with pytest.raises(ValidationError, match="MODELBUS_JOBS_DATABASE_URL"):
        GatewaySettings(
            _env_file=None,
            environment="production",
            registry_api_key=SecretStr("k" * 32),
        )


def test_settings_come_from_modelbus_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELBUS_RATE_LIMIT_BURST", "7")
    monkeypatch.setenv("MODELBUS_REGISTRY_API_KEY", "from-env")

    settings = GatewaySettings(_env_file=None)

    assert settings.rate_limit_burst == 7
    assert settings.registry_api_key is not None
    assert settings.registry_api_key.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)


def test_rate_limit_scope_is_process_or_database(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings(_env_file=None).rate_limit_scope == "process"
    monkeypatch.setenv("MODELBUS_RATE_LIMIT_SCOPE", "database")
    assert GatewaySettings(_env_file=None).rate_limit_scope == "database"
    monkeypatch.setenv("MODELBUS_RATE_LIMIT_SCOPE", "cluster")
    with pytest.raises(ValidationError, match="process"):
        GatewaySettings(_env_file=None)
