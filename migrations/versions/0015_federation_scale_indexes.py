"""federation scale (issue 17 §5): indexes for the back office's default sorts and filters

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 15:45:00

The back-office list of operations sorts every coop's operations by date (newest first), and
filters them by coop: with millions of rows it needs an index on the date, and one on (coop, date)
so a coop's operations come out already sorted. Indexes only: no data moves either way.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.create_index('ix_entry_date', ['date'], unique=False)
        batch_op.create_index('ix_entry_coop_date', ['coop_id', 'date'], unique=False)


def downgrade():
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.drop_index('ix_entry_coop_date')
        batch_op.drop_index('ix_entry_date')
