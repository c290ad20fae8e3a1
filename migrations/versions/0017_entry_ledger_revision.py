"""classic view after a save (issue 17 §1): each operation stamped with the ledger revision of its last change

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 20:00:00

The classic view keeps a ledger's year between requests (app.cahier_days) and, after a save, reads
only the operations changed since the revision it shows: `entry.ledger_revision` holds the revision
that the operation's last change gave its ledger, with an index on (ledger_id, ledger_revision).
Existing rows get 0 (nothing kept by a running process predates the upgrade). Restart every worker
together after upgrading: a worker still running the previous code would change operations without
stamping them, and the other workers' classic views could miss such a change.
The new-operation form's next cheque number reads the coop's cheque numbers from an index on
(coop_id, cheque_number) alone, whatever the coop's history; the consolidated CRF finds each
ledger's lowest and highest operation id in two probes of an index on (ledger_id, id).
Downgrade drops the column and the indexes; the stamp is derived data, nothing of the books is lost.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ledger_revision', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index('ix_entry_ledger_revision', ['ledger_id', 'ledger_revision'], unique=False)
        batch_op.create_index('ix_entry_coop_cheque', ['coop_id', 'cheque_number'], unique=False)
        batch_op.create_index('ix_entry_ledger_id', ['ledger_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.drop_index('ix_entry_ledger_id')
        batch_op.drop_index('ix_entry_coop_cheque')
        batch_op.drop_index('ix_entry_ledger_revision')
        batch_op.drop_column('ledger_revision')
