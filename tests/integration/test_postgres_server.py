"""The test PostgreSQL server really starts, serves SQL over psycopg, and stops."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from devtools.postgres_server import EXTERNAL_URL_ENV, PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A private server for this module only (independent of the session fixture)."""
    srv = PostgresServer.start(tmp_path_factory.mktemp("pg-module"))
    try:
        yield srv
    finally:
        srv.stop()


def test_server_url_uses_psycopg_on_loopback(server: PostgresServer) -> None:
    url = make_url(server.url)
    assert url.drivername == "postgresql+psycopg"
    if not server.external:
        assert url.host == "127.0.0.1"
        assert url.username == "modelbus"
        assert url.database == "modelbus"
    assert server.is_running()


def test_round_trip_in_a_fresh_database(server: PostgresServer) -> None:
    url = server.create_database("roundtrip_test")
    assert make_url(url).database == "roundtrip_test"

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL)"))
            conn.execute(
                text("INSERT INTO item (name) VALUES (:name)"),
                [{"name": "alpha"}, {"name": "beta'; DROP TABLE item; --"}],
            )
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, name FROM item WHERE name = :name"),
                {"name": "beta'; DROP TABLE item; --"},
            ).all()
            version = conn.execute(text("SELECT current_setting('server_version_num')::int"))
            assert version.scalar_one() >= 130000
    finally:
        engine.dispose()
    assert [(r.id, r.name) for r in rows] == [(2, "beta'; DROP TABLE item; --")]


def test_create_database_gives_an_empty_database_each_time(server: PostgresServer) -> None:
    url = server.create_database("isolated_test")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE leftover (x int)"))
        engine.dispose()
        server.create_database("isolated_test")
        with engine.connect() as conn:
            count = conn.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert count == 0


def test_create_database_rejects_unsafe_names(server: PostgresServer) -> None:
    with pytest.raises(ValueError):
        server.create_database('x"; DROP DATABASE modelbus; --')


@pytest.mark.skipif(
    bool(os.environ.get(EXTERNAL_URL_ENV)),
    reason="an external server is never stopped by the tests",
)
def test_stop_stops_and_is_idempotent(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Its own server, so stopping it cannot disturb the module's one."""
    srv = PostgresServer.start(tmp_path_factory.mktemp("pg-stop"))
    assert not srv.external
    try:
        kept = srv.create_database("kept")
        with psycopg.connect(_libpq(kept), autocommit=True) as conn:
            conn.execute("CREATE TABLE note (body text)")
            conn.execute("INSERT INTO note VALUES (%s)", ("survives restarts",))
        assert srv.is_running()

        srv.stop(purge=False)
        assert not srv.is_running()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(_libpq(srv.url), connect_timeout=3).close()
        srv.stop(purge=False)  # idempotent

        # The same data dir starts again (existing cluster, no initdb) and keeps its data.
        assert srv.data_dir is not None
        again = PostgresServer.start(srv.data_dir)
        with psycopg.connect(_libpq(again.url_for("kept"))) as conn:
            assert conn.execute("SELECT body FROM note").fetchall() == [("survives restarts",)]
        again.stop()
        assert not again.is_running()
    finally:
        srv.stop()


def _libpq(url: str) -> str:
    """libpq URI for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
