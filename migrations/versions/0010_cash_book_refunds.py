"""cash-book (issue 13: refunds, first year outstanding items)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 14:15:00

Two more kinds of operation: a refund received (+512 / -6xx) and a refund paid (+7xx / -512).
Downgrading keeps every entry and line: a refund received becomes a receipt and a refund paid an
expense (the kinds of 0009, whose lines are the same), so the figures do not change.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD_KINDS = ('receipt', 'expense', 'transfer', 'advance_paid', 'advance_returned', 'advance_justified', 'opening')
NEW_KINDS = OLD_KINDS + ('refund_received', 'refund_paid')


def _kinds(kinds):
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def upgrade():
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_entry_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_entry_kind'), _kinds(NEW_KINDS))


def downgrade():
    op.execute("UPDATE entry SET kind = 'receipt' WHERE kind = 'refund_received'")
    op.execute("UPDATE entry SET kind = 'expense' WHERE kind = 'refund_paid'")
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_entry_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_entry_kind'), _kinds(OLD_KINDS))
