"""api keys: an owner (person or team) and an optional expiry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 14:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    # A key issued before owners existed is its own owner, as self-approval was judged then.
    op.execute("UPDATE api_keys SET owner = name WHERE owner IS NULL")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.alter_column(
            "owner", existing_type=sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False
        )
        batch_op.create_index(batch_op.f("ix_api_keys_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_owner"))
        batch_op.drop_column("expires_at")
        batch_op.drop_column("owner")
