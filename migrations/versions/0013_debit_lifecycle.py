"""direct debits (issue 16: debit lifecycle, split files, bank reports, coop numbers up to 9999)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 14:15:00

Upgrade: debits may be returned or refunded after settlement (memberships `returned`), carry the
ISO reason code, the mandate amendment, the file they are in and the cash-book entries of their
settlement and reversal; runs are split into `debit_file` rows (the single file of each run
exported before is copied there, and kept on the run); the bank's status files go in
`debit_report`; settings for the pre-notification delay and the debits per file; coop numbers up
to 9999.

Downgrade: returned or refunded debits become `rejected` (with their reason), returned
memberships `rejected` (the older schema knows no return after settlement); the split files and
the bank reports are dropped (the run keeps its first file, as before).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('debit_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=35), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('control_sum_cents', sa.BigInteger(), nullable=False),
    sa.Column('xml_content', sa.LargeBinary(), nullable=False),
    sa.Column('xml_sha256', sa.String(length=64), nullable=False),
    sa.Column('csv_content', sa.LargeBinary(), nullable=False),
    sa.Column('csv_sha256', sa.String(length=64), nullable=False),
    sa.CheckConstraint('count >= 0 AND control_sum_cents >= 0', name=op.f('ck_debit_file_totals_not_negative')),
    sa.ForeignKeyConstraint(['batch_id'], ['debit_batch.id'], name=op.f('fk_debit_file_batch_id_debit_batch'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_debit_file')),
    sa.UniqueConstraint('batch_id', 'sequence', name='uq_debit_file_batch_sequence'),
    sa.UniqueConstraint('message_id', name=op.f('uq_debit_file_message_id'))
    )
    with op.batch_alter_table('debit_file', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_debit_file_batch_id'), ['batch_id'], unique=False)

    op.create_table('debit_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('file_name', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('applied_at', sa.DateTime(), nullable=True),
    sa.Column('applied_by_id', sa.Integer(), nullable=True),
    sa.Column('applied_count', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('pain.002', 'camt.054')", name=op.f('ck_debit_report_kind')),
    sa.ForeignKeyConstraint(['applied_by_id'], ['user_account.id'], name=op.f('fk_debit_report_applied_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['user_account.id'], name=op.f('fk_debit_report_uploaded_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_debit_report')),
    sa.UniqueConstraint('sha256', name=op.f('uq_debit_report_sha256'))
    )

    with op.batch_alter_table('debit_batch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shorter_notice_agreed', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('debit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('original_mandate_ref', sa.String(length=35), server_default='', nullable=False))
        batch_op.add_column(sa.Column('original_iban', sa.String(length=34), server_default='', nullable=False))
        batch_op.add_column(sa.Column('reason_code', sa.String(length=4), server_default='', nullable=False))
        batch_op.add_column(sa.Column('entry_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reversal_entry_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_debit_file_id'), ['file_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_debit_end_to_end_id'), ['end_to_end_id'])
        batch_op.create_foreign_key(batch_op.f('fk_debit_file_id_debit_file'), 'debit_file', ['file_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_debit_entry_id_entry'), 'entry', ['entry_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_debit_reversal_entry_id_entry'), 'entry', ['reversal_entry_id'], ['id'], ondelete='SET NULL')
        batch_op.drop_constraint(batch_op.f('ck_debit_status'), type_='check')
        batch_op.create_check_constraint('status', "status IN ('pending', 'paid', 'rejected', 'returned', 'refunded')")

    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_membership_status'), type_='check')
        batch_op.create_check_constraint(
            'status', "status IN ('draft', 'committed', 'in_batch', 'paid', 'rejected', 'returned')"
        )

    with op.batch_alter_table('coop', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_coop_number_range'), type_='check')
        batch_op.create_check_constraint('number_range', 'number BETWEEN 1 AND 9999')

    with op.batch_alter_table('federation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('debit_notice_days', sa.Integer(), server_default='14', nullable=False))
        batch_op.add_column(sa.Column('debit_max_per_file', sa.Integer(), nullable=True))

    # The single file of each run exported so far becomes its file n° 1, every debit of it inside.
    connection = op.get_bind()
    batches = connection.execute(sa.text(
        "SELECT id, message_id, count, control_sum_cents, xml_content, xml_sha256, csv_content, csv_sha256 "
        "FROM debit_batch WHERE status != 'draft' AND xml_content IS NOT NULL ORDER BY id"
    )).all()
    for row in batches:
        connection.execute(sa.text(
            "INSERT INTO debit_file (batch_id, sequence, message_id, count, control_sum_cents, xml_content, "
            "xml_sha256, csv_content, csv_sha256) VALUES (:batch_id, 1, :message_id, :count, :sum, :xml, "
            ":xml_sha, :csv, :csv_sha)"
        ), {
            "batch_id": row.id, "message_id": row.message_id, "count": row.count, "sum": row.control_sum_cents,
            "xml": row.xml_content, "xml_sha": row.xml_sha256, "csv": row.csv_content or b"", "csv_sha": row.csv_sha256,
        })
        connection.execute(sa.text(
            "UPDATE debit SET file_id = (SELECT id FROM debit_file WHERE batch_id = :batch_id AND sequence = 1) "
            "WHERE batch_id = :batch_id"
        ), {"batch_id": row.id})


def downgrade():
    connection = op.get_bind()
    connection.execute(sa.text(
        "UPDATE debit SET status = 'rejected', reject_reason = substr(reason_code || ' ' || reject_reason, 1, 300) "
        "WHERE status IN ('returned', 'refunded')"
    ))
    connection.execute(sa.text("UPDATE membership SET status = 'rejected' WHERE status = 'returned'"))

    with op.batch_alter_table('federation', schema=None) as batch_op:
        batch_op.drop_column('debit_max_per_file')
        batch_op.drop_column('debit_notice_days')

    with op.batch_alter_table('coop', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_coop_number_range'), type_='check')
        batch_op.create_check_constraint('number_range', 'number BETWEEN 1 AND 999')

    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_membership_status'), type_='check')
        batch_op.create_check_constraint('status', "status IN ('draft', 'committed', 'in_batch', 'paid', 'rejected')")

    with op.batch_alter_table('debit', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_debit_status'), type_='check')
        batch_op.create_check_constraint('status', "status IN ('pending', 'paid', 'rejected')")
        batch_op.drop_constraint(batch_op.f('fk_debit_reversal_entry_id_entry'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_debit_entry_id_entry'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_debit_file_id_debit_file'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_debit_end_to_end_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_debit_file_id'))
        batch_op.drop_column('reversal_entry_id')
        batch_op.drop_column('entry_id')
        batch_op.drop_column('reason_code')
        batch_op.drop_column('original_iban')
        batch_op.drop_column('original_mandate_ref')
        batch_op.drop_column('file_id')

    with op.batch_alter_table('debit_batch', schema=None) as batch_op:
        batch_op.drop_column('shorter_notice_agreed')

    op.drop_table('debit_report')
    with op.batch_alter_table('debit_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_debit_file_batch_id'))
    op.drop_table('debit_file')
