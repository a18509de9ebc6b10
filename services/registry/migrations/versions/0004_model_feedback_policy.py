"""models: a feedback policy (how ratings and signals become labels, what is reviewed)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL means the default policy, so models registered before stay as they were.
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feedback", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), not a batch: rebuilding `models` would drop it,
    # which the foreign keys of every other table forbid.
    op.drop_column("models", "feedback")
