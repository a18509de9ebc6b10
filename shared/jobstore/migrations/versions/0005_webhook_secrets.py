"""webhook secrets per subscriber (API key), rotatable with an overlap

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 14:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_secrets",
        sa.Column("subscriber", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("previous_secret", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscriber"),
    )


def downgrade() -> None:
    op.drop_table("webhook_secrets")
