"""Every service reads one Kafka security block and hands the same options to each client."""

from __future__ import annotations

import ssl

import pytest
from pydantic import ValidationError

from shared.settings import ModelbusSettings


def test_plaintext_adds_no_client_options() -> None:
    assert ModelbusSettings(_env_file=None).kafka_security.client_options() == {}  # type: ignore[call-arg]


def test_sasl_settings_become_aiokafka_options() -> None:
    settings = ModelbusSettings(
        _env_file=None,  # type: ignore[call-arg]
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="inference",
        kafka_sasl_password="s3cret",  # type: ignore[arg-type]
    )
    options = settings.kafka_security.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "inference",
        "s3cret",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert "s3cret" not in repr(settings)


def test_sasl_without_credentials_or_a_lone_certificate_is_refused() -> None:
    with pytest.raises(ValidationError, match="MODELBUS_KAFKA_SASL_USERNAME"):
        ModelbusSettings(_env_file=None, kafka_security_protocol="SASL_PLAINTEXT")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="go together"):
        ModelbusSettings(_env_file=None, kafka_ssl_certfile="client.pem")  # type: ignore[call-arg]
