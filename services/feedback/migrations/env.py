"""Alembic environment of the feedback store's schema."""

from services.feedback.adapters.tables import feedback_metadata
from shared.db import run_alembic_environment

run_alembic_environment(feedback_metadata)
