"""year end (issue 13: figures stored at closing)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 14:15:00

Reserved in the migration chain for the work of this area; no schema change yet.
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
