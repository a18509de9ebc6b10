"""labelled examples keep their inputs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Requests are forgotten after the retention; the training data must not be.
    op.add_column("feedback_labels", sa.Column("inputs", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("feedback_labels", "inputs")
