"""cash-book (issue 13 §6: items outstanding in the previous tool, carried into the first year)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 15:30:00

One more kind of operation, ``carried``: a cheque or deposit outstanding at 31 August in the tool
used before the portal (+512 / -110, piece RAN-n), pointed in the first year. Downgrading keeps every
entry and line: a carried item becomes a transfer (same lines, so the figures do not change) and
upgrading again finds it by its piece RAN-n.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

OLD_KINDS = (
    'receipt', 'expense', 'transfer', 'advance_paid', 'advance_returned', 'advance_justified', 'opening',
    'refund_received', 'refund_paid',
)
NEW_KINDS = (*OLD_KINDS, 'carried')


def _kinds(kinds):
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def upgrade():
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_entry_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_entry_kind'), _kinds(NEW_KINDS))
    op.execute("UPDATE entry SET kind = 'carried' WHERE kind = 'transfer' AND piece LIKE 'RAN-%'")


def downgrade():
    op.execute("UPDATE entry SET kind = 'transfer' WHERE kind = 'carried'")
    with op.batch_alter_table('entry', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_entry_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_entry_kind'), _kinds(OLD_KINDS))
