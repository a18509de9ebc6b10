"""Alembic environment of the job store's schema."""

from shared.db import run_alembic_environment
from shared.jobstore.tables import jobstore_metadata

run_alembic_environment(jobstore_metadata)
