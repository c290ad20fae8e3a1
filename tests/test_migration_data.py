"""Migrations keep data both ways: every table filled, downgraded one step at a time to the first
revision, then upgraded again, and the rows compared at each step.

SQLite rebuilds a table to alter it ("batch" mode); with foreign keys on, dropping the old copy
cascaded to every child row (downgrading 0007 -> 0006 deleted every entry). `migrations/env.py`
turns foreign keys off for the duration of a migration and checks them afterwards.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from itertools import pairwise

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from app import clock
from app.demo import load_demo
from app.extensions import db
from tests.conftest import FAST_ARGON2

# Data migrations: their downgrade removes the rows they loaded, by design (0002 loads the chart of
# accounts). Below such a revision those tables are compared without those rows.
LOADED_BY = {"0002": "account"}
_IN_LIST = re.compile(r"(\w+) IN \(([^)]*)\)")


def _allowed_values(table: sa.Table) -> dict[str, str]:
    """column -> first value its `col IN (…)` check constraint allows."""
    values = {}
    for constraint in table.constraints:
        if isinstance(constraint, sa.CheckConstraint):
            for match in _IN_LIST.finditer(str(constraint.sqltext)):
                values[match.group(1)] = match.group(2).split(",")[0].strip().strip("'")
    return values


def _synthetic_row(table: sa.Table, connection) -> dict:
    """One row with every column filled (so that every column is checked), foreign keys pointing at
    the first parent row."""
    allowed = _allowed_values(table)
    row = {}
    for column in table.columns:
        if column.primary_key and isinstance(column.type, sa.Integer):
            continue
        if column.name in allowed:
            row[column.name] = allowed[column.name]
        elif column.foreign_keys:
            target = next(iter(column.foreign_keys)).column
            row[column.name] = connection.scalar(sa.select(target).order_by(target).limit(1))
        elif isinstance(column.type, sa.Boolean):
            row[column.name] = False
        elif isinstance(column.type, sa.Integer):
            row[column.name] = 1
        elif isinstance(column.type, sa.DateTime):
            row[column.name] = datetime(2025, 9, 15, 8, 30)
        elif isinstance(column.type, sa.Date):
            row[column.name] = date(2025, 9, 15)
        elif isinstance(column.type, sa.LargeBinary):
            row[column.name] = b"data"
        elif isinstance(column.type, sa.JSON):
            row[column.name] = {}
        else:
            length = getattr(column.type, "length", None) or 12
            row[column.name] = f"t{table.name}"[:length]
    return row


def _fill_every_table(app) -> None:
    with app.app_context():
        load_demo(db.session, today=clock.today(), hash_params=FAST_ARGON2)
        db.session.commit()
        with db.engine.begin() as connection:
            for table in db.metadata.sorted_tables:
                if connection.scalar(sa.select(sa.func.count()).select_from(table)) == 0:
                    connection.execute(table.insert(), [_synthetic_row(table, connection)])


def _snapshot(connection) -> dict[str, set[tuple]]:
    """Every table's rows as sets of (column, value) pairs."""
    inspector = sa.inspect(connection)
    tables = {}
    for name in inspector.get_table_names():
        if name == "alembic_version":
            continue
        table = sa.Table(name, sa.MetaData(), autoload_with=connection)
        tables[name] = {
            tuple(sorted((key, str(value)) for key, value in row._mapping.items()))
            for row in connection.execute(table.select())
        }
    return tables


def _project(rows: set[tuple], columns: set[str]) -> set[tuple]:
    return {tuple(pair for pair in row if pair[0] in columns) for row in rows}


def _columns(connection) -> dict[str, set[str]]:
    inspector = sa.inspect(connection)
    return {name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_table_names()}


def test_every_step_down_and_back_up_keeps_the_data(app):
    from flask_migrate import downgrade, upgrade

    _fill_every_table(app)
    with app.app_context():
        directory = app.extensions["migrate"].directory
        config = Config()
        config.set_main_option("script_location", directory)
        revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()]  # head first
        with db.engine.connect() as connection:
            original = _snapshot(connection)
        assert all(original[name] for name in original), [name for name in original if not original[name]]

        unloaded: set[str] = set()
        for above, revision in pairwise(revisions):
            downgrade(revision=revision)
            if above in LOADED_BY:
                unloaded.add(LOADED_BY[above])
            with db.engine.connect() as connection:
                columns, now = _columns(connection), _snapshot(connection)
            for name, rows in now.items():
                expected = set() if name in unloaded else _project(original[name], columns[name])
                assert rows == expected, f"{name} changed at {revision}"

        upgrade()
        with db.engine.connect() as connection:
            back = _snapshot(connection)
        for name in columns:  # tables that existed at the first revision, on their first columns
            if name != "alembic_version" and name not in unloaded:
                assert _project(back[name], columns[name]) == _project(original[name], columns[name]), name
        db.session.remove()
