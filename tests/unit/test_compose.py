"""docker-compose.yml cannot run here, so it is checked against the code instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

import services.delivery.settings
import services.drift.settings
import services.feedback.settings
import services.gateway.settings
import services.inference.settings
import services.registry.settings  # noqa: F401  (registers the settings classes)
from services.cli.main import app
from shared.settings import ModelbusSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
BUILT = {name: spec for name, spec in SERVICES.items() if "build" in spec}


def _settings_fields() -> set[str]:
    fields: set[str] = set()
    pending: list[type[ModelbusSettings]] = [ModelbusSettings]
    while pending:
        cls = pending.pop()
        fields |= {f"MODELBUS_{name.upper()}" for name in cls.model_fields}
        pending.extend(cls.__subclasses__())
    return fields


def _cli_commands() -> set[tuple[str, ...]]:
    root = typer.main.get_command(app)
    found: set[tuple[str, ...]] = set()

    def walk(command: Any, path: tuple[str, ...]) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, (*path, name))
        else:
            found.add(path)

    walk(root, ())
    return found


def test_compose_runs_kafka_postgres_and_the_services() -> None:
    assert "kafka" in SERVICES and "postgres" in SERVICES
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert {"registry", "topics", "gateway", "inference", "delivery", "feedback", "drift"} <= set(
        BUILT
    )


@pytest.mark.parametrize("service", sorted(BUILT))
def test_commands_exist_in_the_cli(service: str) -> None:
    command = tuple(BUILT[service]["command"])
    assert command in _cli_commands(), f"{service}: `modelbus {' '.join(command)}` does not exist"


@pytest.mark.parametrize("service", sorted(BUILT))
def test_environment_names_are_real_settings(service: str) -> None:
    known = _settings_fields()
    names = {name for name in BUILT[service]["environment"] if name.startswith("MODELBUS_")}
    assert names, f"{service} sets no MODELBUS_ settings"
    assert names <= known, f"{service}: unknown settings {sorted(names - known)}"


def test_secrets_come_from_the_environment_not_the_file() -> None:
    for name, spec in SERVICES.items():
        for key, value in (spec.get("environment") or {}).items():
            if re.search(r"KEY|PASSWORD|SECRET", key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}.{key} is inline"


@pytest.mark.parametrize(
    ("service", "setting"),
    [
        ("registry", "MODELBUS_REGISTRY_PORT"),
        ("gateway", "MODELBUS_GATEWAY_PORT"),
        ("inference", "MODELBUS_WORKER_PORT"),
        ("delivery", "MODELBUS_DELIVERY_HEALTH_PORT"),
        ("feedback", "MODELBUS_FEEDBACK_HEALTH_PORT"),
        ("drift", "MODELBUS_DRIFT_HEALTH_PORT"),
    ],
)
def test_health_checks_use_the_configured_port(service: str, setting: str) -> None:
    spec = BUILT[service]
    port = str(spec["environment"][setting])
    assert f":{port}/readyz" in spec["healthcheck"]["test"][1]
    if "ports" in spec:
        assert f"{port}:{port}" in spec["ports"]


def test_services_that_share_the_job_store_use_one_database() -> None:
    urls = {
        BUILT[name]["environment"]["MODELBUS_JOBS_DATABASE_URL"] for name in ("gateway", "delivery")
    }
    assert len(urls) == 1


def test_kafka_image_matches_the_broker_the_scripts_fetch() -> None:
    script = (ROOT / "infra/kafka/kafka.sh").read_text()
    version = re.search(r'DEFAULT_KAFKA_VERSION="([^"]+)"', script)
    assert version is not None
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{version.group(1)}"
