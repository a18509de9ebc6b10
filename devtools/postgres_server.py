"""A real PostgreSQL server for the test session, run by ``infra/postgres/postgres.sh``.

Tests use a genuine PostgreSQL (never SQLite standing in for it) so that SQL dialect,
transaction and locking behaviour is the one production sees. This module only picks a
free port and drives the project's own script, so developers and CI install and start the
server exactly the same way (the script installs Debian's ``postgresql`` when missing).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from devtools.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_SH = REPO_ROOT / "infra" / "postgres" / "postgres.sh"

#: Env var naming an already running server (SQLAlchemy URL); nothing is started or stopped.
EXTERNAL_URL_ENV = "MODELBUS_TEST_DATABASE_URL"

# The first run on a fresh machine apt-get installs PostgreSQL, so allow minutes.
_START_TIMEOUT_S = 900.0
_STOP_TIMEOUT_S = 120.0
_START_ATTEMPTS = 3
# postgres.sh's exit code for "port already in use" (someone took our free port).
_EXIT_PORT_BUSY = 3
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresServerError(RuntimeError):
    """Raised when postgres.sh cannot install, start or stop the server."""


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run postgres.sh with ``args``; output is captured so failures can quote it."""
    env = {k: v for k, v in os.environ.items() if k != "MODELBUS_DATABASE_URL"}
    try:
        return subprocess.run(
            ["bash", str(POSTGRES_SH), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=REPO_ROOT,
            env=env,  # the app's MODELBUS_DATABASE_URL would make the script start nothing
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresServerError(f"postgres.sh {args[0]} timed out after {timeout:.0f}s") from exc


def _failure(what: str, proc: subprocess.CompletedProcess[str]) -> PostgresServerError:
    """Build an error quoting postgres.sh's output (it includes the server log tail)."""
    tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-60:])
    return PostgresServerError(f"postgres.sh {what} failed (exit {proc.returncode}):\n{tail}")


def _conninfo(url: URL) -> str:
    """libpq connection string for a SQLAlchemy URL (psycopg does not read ``+driver``)."""
    return psycopg.conninfo.make_conninfo(
        host=url.host or "",
        port=str(url.port or ""),
        user=url.username or "",
        password=url.password or "",
        dbname=url.database or "",
    )


@dataclass(frozen=True)
class PostgresServer:
    """Handle on a running server: where to connect, and how to get rid of it.

    ``data_dir`` is ``None`` for an external server given by ``MODELBUS_TEST_DATABASE_URL``.
    ``start_seconds`` is how long ``postgres.sh start`` took, kept so slow starts show up.
    """

    url: str
    data_dir: Path | None
    start_seconds: float

    @property
    def external(self) -> bool:
        """True when the server is someone else's (we must not stop it)."""
        return self.data_dir is None

    @classmethod
    def start(cls, data_dir: Path) -> PostgresServer:
        """Start a private cluster in ``data_dir`` on a free port; return when it answers.

        Honours ``MODELBUS_TEST_DATABASE_URL``: then nothing is started. The server is tied
        to this process (``--owner-pid``), so a crashed test run does not leak a postmaster.
        """
        external = os.environ.get(EXTERNAL_URL_ENV, "").strip()
        if external:
            ext_url = make_url(external).set(drivername="postgresql+psycopg")
            return cls(
                url=ext_url.render_as_string(hide_password=False), data_dir=None, start_seconds=0.0
            )

        data_dir = data_dir.resolve()
        last: subprocess.CompletedProcess[str] | None = None
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            started_at = time.monotonic()
            proc = _run(
                [
                    "start",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(data_dir),
                    "--owner-pid",
                    str(os.getpid()),
                ],
                _START_TIMEOUT_S,
            )
            elapsed = time.monotonic() - started_at
            if proc.returncode == 0:
                # The script prints the SQLAlchemy URL as its last stdout line.
                url = proc.stdout.strip().splitlines()[-1]
                return cls(url=url, data_dir=data_dir, start_seconds=elapsed)
            last = proc
            # Another process may have grabbed the port between our probe and the bind.
            if proc.returncode != _EXIT_PORT_BUSY:
                break
        assert last is not None
        raise _failure("start", last)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        url = make_url(self.url).set(database=database)
        return url.render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` (dropping any old one) and return its URL.

        One database per test module or test keeps tests isolated without a server each.
        """
        if not _DB_NAME.match(name):
            raise ValueError(f"database name must match {_DB_NAME.pattern}: {name!r}")
        with psycopg.connect(_conninfo(make_url(self.url)), autocommit=True) as conn:
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        return self.url_for(name)

    def is_running(self) -> bool:
        """True when the server accepts connections (``postgres.sh status``)."""
        if self.data_dir is None:
            try:
                with psycopg.connect(_conninfo(make_url(self.url)), connect_timeout=5):
                    return True
            except psycopg.OperationalError:
                return False
        return _run(["status", "--data-dir", str(self.data_dir)], _STOP_TIMEOUT_S).returncode == 0

    def stop(self, *, purge: bool = True) -> None:
        """Stop the server; with ``purge`` (default) also delete its disposable cluster.

        Purging matters because a data dir the ``postgres`` user cannot reach (pytest's
        0700 tmp dirs, /root) is relocated under /tmp, where pytest never cleans up.
        No-op for an external server. Idempotent.
        """
        if self.data_dir is None:
            return
        args = ["stop", "--data-dir", str(self.data_dir)] + (["--purge"] if purge else [])
        proc = _run(args, _STOP_TIMEOUT_S)
        if proc.returncode != 0:
            raise _failure("stop", proc)
