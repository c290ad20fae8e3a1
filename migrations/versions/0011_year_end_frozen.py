"""year end (issue 13: figures stored at closing)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 14:15:00

`ledger_closing`: the CRF figures a closing stores (result, reconciliation at 31 August with every
uncleared line, cash count, subsidies, actions, inventory register), their SHA-256 checksum and the
short verification code printed on the PDF. A year closed before this revision has no row: its
CRF is computed from its ledger until staff reopen and close it again. Downgrading drops the table
(the ledgers, their statement balance and cash count stay where they were).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ledger_closing',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ledger_id', sa.Integer(), nullable=False),
        sa.Column('closed_at', sa.DateTime(), nullable=False),
        sa.Column('figures', sa.JSON(), nullable=False),
        sa.Column('checksum', sa.String(length=64), nullable=False),
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('superseded_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['ledger_id'], ['ledger.id'], name=op.f('fk_ledger_closing_ledger_id_ledger'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_closing')),
    )
    with op.batch_alter_table('ledger_closing', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_closing_code'), ['code'], unique=False)
        batch_op.create_index('ix_ledger_closing_ledger_superseded', ['ledger_id', 'superseded_at'], unique=False)


def downgrade():
    with op.batch_alter_table('ledger_closing', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_closing_ledger_superseded')
        batch_op.drop_index(batch_op.f('ix_ledger_closing_code'))
    op.drop_table('ledger_closing')
