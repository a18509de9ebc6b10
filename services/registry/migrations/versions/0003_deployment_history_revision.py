"""deployment history revision

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('deployment_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=True))

    # Every change so far raised its model's revision by one: number the rows in order.
    op.execute(
        'UPDATE deployment_history SET revision = ('
        'SELECT COUNT(*) FROM deployment_history AS earlier '
        'WHERE earlier.model_id = deployment_history.model_id '
        'AND earlier.id <= deployment_history.id)'
    )

    with op.batch_alter_table('deployment_history', schema=None) as batch_op:
        batch_op.alter_column('revision', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint('uq_deployment_history_revision', ['model_id', 'revision'])


def downgrade() -> None:
    with op.batch_alter_table('deployment_history', schema=None) as batch_op:
        batch_op.drop_constraint('uq_deployment_history_revision', type_='unique')
        batch_op.drop_column('revision')
