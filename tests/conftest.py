"""Session fixtures: a real Kafka broker and a real PostgreSQL server, started once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from devtools.kafka_broker import KafkaBroker
from devtools.postgres_server import PostgresServer
from shared.db import make_engine
from shared.jobstore.store import migrate as migrate_jobstore

STARTUP_SECONDS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how long the real servers took to start, so slow starts are visible in CI logs."""
    for name, seconds in STARTUP_SECONDS.items():
        terminalreporter.write_line(f"{name} started in {seconds:.1f} s")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A single-node Apache Kafka broker in KRaft mode on a free port."""
    broker = KafkaBroker.start(tmp_path_factory.mktemp("kafka"))
    STARTUP_SECONDS["Kafka broker (format + start, until healthy)"] = broker.start_seconds
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster on a free port."""
    server = PostgresServer.start(tmp_path_factory.mktemp("postgres"))
    STARTUP_SECONDS["PostgreSQL (initdb + start)"] = server.start_seconds
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def topic_prefix() -> str:
    """Each test gets its own topics on the shared broker."""
    return f"t{uuid.uuid4().hex[:10]}-"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every registry test runs against SQLite and against PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"registry_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def jobstore_engine(database_url: str) -> Iterator[Engine]:
    """An engine on a job store migrated to the newest schema (SQLite, then PostgreSQL)."""
    migrate_jobstore(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()
