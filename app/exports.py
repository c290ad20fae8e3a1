"""Federation exports (coops, memberships, consolidated CRF) as tables, written as CSV or XLSX.

CSV for French Excel users: `;`, UTF-8 with BOM, CRLF, decimal comma; text cells that could be read
as formulas get a leading quote (CWE-1236). XLSX keeps real numbers (euros) and dates.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.mandates import current_mandate
from app.models import Account, Coop, Entry, EntryLine, Ledger, Membership, SchoolYear


@dataclass(frozen=True)
class Money:
    """An amount in cents inside an export row (written 1234,56 in CSV, 1234.56 as a number in XLSX)."""

    cents: int


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list]


def _text(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(table: Table) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(table.header)
    for row in table.rows:
        cells = []
        for value in row:
            if isinstance(value, Money):
                sign = "-" if value.cents < 0 else ""
                whole, cents = divmod(abs(value.cents), 100)
                cells.append(f"{sign}{whole},{cents:02d}")
            elif isinstance(value, (date, datetime)):
                cells.append(value.strftime("%d/%m/%Y"))
            elif value is None:
                cells.append("")
            elif isinstance(value, str):
                cells.append(_text(value))
            else:
                cells.append(str(value))
        writer.writerow(cells)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(table: Table) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = table.title[:31]
    sheet.append(table.header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table.rows:
        values = [
            Decimal(v.cents) / 100 if isinstance(v, Money) else _text(v) if isinstance(v, str) else v for v in row
        ]
        sheet.append(values)
        for cell, value in zip(sheet[sheet.max_row], row, strict=True):
            if isinstance(value, Money):
                cell.number_format = "#,##0.00"
            elif isinstance(value, date):
                cell.number_format = "DD/MM/YYYY"
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def coops_table(session: Session, today: date) -> Table:
    """Every coop with its identity and current mandataire."""
    coops = session.scalars(sa.select(Coop).order_by(Coop.number)).all()
    rows = []
    for coop in coops:
        mandate = current_mandate(coop, today)
        rows.append(
            [
                coop.login,
                coop.name,
                coop.school_name,
                coop.uai,
                coop.address,
                coop.postal_code,
                coop.city,
                coop.email,
                coop.phone,
                coop.director_name,
                coop.bank_name,
                coop.iban,
                coop.bic,
                coop.debit_mandate_ref,
                coop.debit_mandate_signed_on,
                "oui" if coop.is_active else "non",
                mandate.full_name if mandate else "",
                mandate.email if mandate else "",
            ]
        )
    return Table(
        "Coopératives",
        [
            "identifiant",
            "nom",
            "ecole",
            "uai",
            "adresse",
            "code_postal",
            "commune",
            "email",
            "telephone",
            "direction",
            "banque",
            "iban",
            "bic",
            "rum",
            "mandat_signe_le",
            "active",
            "mandataire",
            "email_mandataire",
        ],
        rows,
    )


def memberships_table(session: Session, start_year: int) -> Table:
    """The year's memberships with their frozen headcounts and fees."""
    rows = []
    memberships = session.scalars(
        sa.select(Membership)
        .join(Membership.school_year)
        .join(Membership.coop)
        .where(SchoolYear.start_year == start_year)
        .order_by(Coop.number)
    ).all()
    for m in memberships:
        rows.append(
            [
                m.coop.login,
                m.coop.name,
                m.status,
                m.payment_method or "",
                m.pupils_count,
                m.teachers_count,
                m.insured_count,
                Money(m.property_value_cents or 0),
                Money(m.cotisation_cents) if m.cotisation_cents is not None else None,
                Money(m.total_cents - m.cotisation_cents) if m.total_cents is not None else None,
                Money(m.total_cents) if m.total_cents is not None else None,
                m.reference or "",
                m.committed_at,
                m.paid_at,
            ]
        )
    return Table(
        f"Adhésions {start_year}-{start_year + 1}",
        [
            "identifiant",
            "nom",
            "statut",
            "paiement",
            "eleves",
            "enseignants",
            "assures",
            "biens_declares",
            "cotisation",
            "assurance",
            "total",
            "reference",
            "engagee_le",
            "reglee_le",
        ],
        rows,
    )


def consolidated_crf(session: Session, start_year: int) -> tuple[Table, Table]:
    """For every account the sum over all coops' ledgers of the year; for every coop its result and balances."""
    ledgers = sa.select(Ledger.id).join(Ledger.school_year).where(SchoolYear.start_year == start_year)
    per_account = session.execute(
        sa.select(
            Account.code,
            Account.label,
            Account.nature,
            sa.func.sum(EntryLine.amount_cents),
            sa.func.count(sa.distinct(Entry.coop_id)),
        )
        .join(EntryLine.account)
        .join(EntryLine.entry)
        .where(Entry.ledger_id.in_(ledgers), Account.nature.in_(("expense", "income", "subsidy")))
        .group_by(Account.code, Account.label, Account.nature)
        .order_by(Account.code)
    ).all()
    accounts = Table(
        "Comptes",
        ["compte", "code_occe", "libelle", "nature", "montant", "cooperatives"],
        [
            [
                code,
                code.ljust(7, "0") + "8",
                label,
                "charge" if nature == "expense" else "produit",
                Money(int(total) if nature == "expense" else -int(total)),
                count,
            ]
            for code, label, nature, total, count in per_account
        ],
    )
    per_coop = session.execute(
        sa.select(
            Coop.number,
            Coop.name,
            Ledger.status,
            sa.func.sum(sa.case((Account.nature == "expense", EntryLine.amount_cents), else_=0)),
            sa.func.sum(sa.case((Account.nature.in_(("income", "subsidy")), -EntryLine.amount_cents), else_=0)),
            sa.func.sum(sa.case((Account.nature == "bank", EntryLine.amount_cents), else_=0)),
            sa.func.sum(sa.case((Account.nature == "cash", EntryLine.amount_cents), else_=0)),
            sa.func.sum(sa.case((Account.nature == "advance", EntryLine.amount_cents), else_=0)),
        )
        .select_from(Ledger)
        .join(Coop, Coop.id == Ledger.coop_id)
        .join(Ledger.school_year)
        .join(Entry, Entry.ledger_id == Ledger.id)
        .join(EntryLine, EntryLine.entry_id == Entry.id)
        .join(Account, Account.id == EntryLine.account_id)
        .where(SchoolYear.start_year == start_year)
        .group_by(Coop.number, Coop.name, Ledger.status)
        .order_by(Coop.number)
    ).all()
    coops = Table(
        "Coopératives",
        ["identifiant", "nom", "cahier", "charges", "produits", "resultat", "banque", "caisse", "regies"],
        [
            [
                f"085-{number:03d}",
                name,
                "clôturé" if status == "closed" else "ouvert",
                Money(int(charges)),
                Money(int(produits)),
                Money(int(produits) - int(charges)),
                Money(int(bank)),
                Money(int(cash)),
                Money(int(advance)),
            ]
            for number, name, status, charges, produits, bank, cash, advance in per_coop
        ],
    )
    return accounts, coops
