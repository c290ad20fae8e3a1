"""classic view after a save (issue 17 §1): the year's operation keys read from one covering index

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 17:20:00

After a save, the classic view reads the (id, version, created_at) of every operation of the year in
date order, to find the few that changed. With an index on (ledger_id, date, id, version,
created_at) the database answers from the index alone instead of reading every operation's row.
It replaces ix_entry_ledger_date (ledger_id, date), of which it is an extension. Indexes only: no
data moves either way.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.create_index('ix_entry_ledger_keys', ['ledger_id', 'date', 'id', 'version', 'created_at'], unique=False)
        batch_op.drop_index('ix_entry_ledger_date')


def downgrade():
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.create_index('ix_entry_ledger_date', ['ledger_id', 'date'], unique=False)
        batch_op.drop_index('ix_entry_ledger_keys')
