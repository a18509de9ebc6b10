"""datasets: where a snapshot came from (model, description) and who stored it

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 17:15:00.000000
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
    # Only added columns and an index: on SQLite a batch that rebuilt `datasets` would have
    # to drop it, which the foreign keys of model_versions forbid.
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "description",
                sqlmodel.sql.sqltypes.AutoString(length=2000),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(
            sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
    # Snapshots stored so far were training data of versions: the first version names them.
    first_version = (
        "FROM model_versions JOIN models ON models.id = model_versions.model_id "
        "WHERE model_versions.dataset_id = datasets.id ORDER BY model_versions.id LIMIT 1"
    )
    op.execute(
        f"UPDATE datasets SET model = (SELECT models.name {first_version}), "
        f"created_by = (SELECT model_versions.created_by {first_version})"
    )
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_datasets_model"), ["model"], unique=False)


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), not a batch: rebuilding `datasets` would drop it.
    op.drop_index(op.f("ix_datasets_model"), table_name="datasets")
    for column in ("created_by", "description", "model"):
        op.drop_column("datasets", column)
