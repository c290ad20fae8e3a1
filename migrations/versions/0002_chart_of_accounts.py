"""chart of accounts: load the OCCE chart shipped in app/data/plan_comptable.csv

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

A data migration, so that every database has the chart and nothing is loaded at start-up.
Codes already present are left alone (staff may have edited them). The downgrade removes
only the codes this migration brings.
"""

import csv
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CSV_PATH = Path(__file__).resolve().parents[2] / "app" / "data" / "plan_comptable.csv"
NATURES = {"banque": "bank", "caisse": "cash", "regie": "advance", "report": "opening", "charge": "expense",
           "produit": "income", "subvention": "subsidy"}

account = sa.table(
    "account",
    sa.column("code", sa.String),
    sa.column("label", sa.String),
    sa.column("nature", sa.String),
    sa.column("is_active", sa.Boolean),
    sa.column("notes", sa.String),
)


def _rows():
    with CSV_PATH.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            yield {"code": row["code"].strip(), "label": row["libelle"].strip(), "nature": NATURES[row["nature"]],
                   "is_active": True, "notes": (row.get("notes") or "").strip()[:500]}


def upgrade():
    connection = op.get_bind()
    present = set(connection.scalars(sa.select(account.c.code)))
    rows = [row for row in _rows() if row["code"] not in present]
    if rows:
        op.bulk_insert(account, rows)


def downgrade():
    codes = [row["code"] for row in _rows()]
    op.execute(account.delete().where(account.c.code.in_(codes)))
