"""direct debits (issue 16: debit lifecycle, coop numbers up to 9999)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 14:15:00

Reserved in the migration chain for the work of this area; no schema change yet.
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
