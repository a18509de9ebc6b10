"""Alembic environment of the registry's schema."""

from sqlmodel import SQLModel

import services.registry.adapters.tables  # noqa: F401  (registers the tables)
from shared.db import run_alembic_environment

run_alembic_environment(SQLModel.metadata)
