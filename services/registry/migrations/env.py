"""Alembic environment: runs the registry's migrations against the configured URL."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import services.registry.adapters.tables  # noqa: F401  (registers the tables)
from services.registry.adapters.database import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
