"""The real migrations build exactly the models' schema, and load the chart of accounts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.extensions import db
from app.models import Account


def test_migrations_match_models(app, migrated):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_chart_of_accounts_is_loaded_by_migration(db_check):
    accounts = db_check(lambda s: {a.code: (a.display_code, a.nature, a.label) for a in s.scalars(sa.select(Account))})
    assert len(accounts) == 28
    assert accounts["6281"][:2] == ("62810008", "expense")
    assert accounts["61681"][0] == "61681008"
    assert accounts["512"][:2] == ("51200008", "bank")
    assert accounts["110"][1] == "opening"
    assert accounts["741"][1] == "subsidy"
    assert accounts["68"][0] == "68000008"


def test_downgrade_then_upgrade_keeps_the_chart(app):
    from flask_migrate import downgrade, upgrade

    with app.app_context():
        downgrade(revision="0001")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 0
        db.session.remove()
        upgrade()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 28
        db.session.remove()
