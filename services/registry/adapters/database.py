"""The registry's schema: its migrations, applied to SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from shared import db
from shared.db import make_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "registry_alembic_version"

__all__ = ["alembic_config", "make_engine", "migrate"]


def alembic_config(url: str) -> Config:
    return db.alembic_config(url, MIGRATIONS, VERSION_TABLE)


def migrate(url: str) -> None:
    """Bring the registry's schema to the newest migration."""
    db.migrate(url, MIGRATIONS, VERSION_TABLE)
