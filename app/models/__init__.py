"""Typed SQLAlchemy models, one module per aggregate."""

from app.models.account import NATURES, Account, occe_code
from app.models.audit import AuditEvent, PendingChange
from app.models.base import utcnow
from app.models.coop import DEPARTMENT_CODE, Coop, Mandate, coop_login
from app.models.debit import DEBIT_STATUSES, Debit, DebitBatch, DebitFile, DebitReport
from app.models.federation import Federation
from app.models.ledger import ENTRY_KINDS, PAYMENT_MODES, Action, Document, Entry, EntryLine, Ledger
from app.models.mandate_change import MANDATE_CHANGE_STATUSES, MANDATE_DOCUMENT_KINDS, MandateChange
from app.models.membership import MEMBERSHIP_STATUSES, PAYMENT_METHODS, Membership, MembershipClass
from app.models.outbox import OutboxEmail
from app.models.reports import REPORT_DOCUMENT_KINDS, REPORT_STATUSES, AnnualReport
from app.models.school_year import SchoolYear, school_year_label, school_year_start
from app.models.statement import Statement, StatementLine
from app.models.user import ROLES, PasswordResetToken, User

__all__ = [
    "DEBIT_STATUSES",
    "DEPARTMENT_CODE",
    "ENTRY_KINDS",
    "MANDATE_CHANGE_STATUSES",
    "MANDATE_DOCUMENT_KINDS",
    "MEMBERSHIP_STATUSES",
    "NATURES",
    "PAYMENT_METHODS",
    "PAYMENT_MODES",
    "REPORT_DOCUMENT_KINDS",
    "REPORT_STATUSES",
    "ROLES",
    "Account",
    "Action",
    "AnnualReport",
    "AuditEvent",
    "Coop",
    "Debit",
    "DebitBatch",
    "DebitFile",
    "DebitReport",
    "Document",
    "Entry",
    "EntryLine",
    "Federation",
    "Ledger",
    "Mandate",
    "MandateChange",
    "Membership",
    "MembershipClass",
    "OutboxEmail",
    "PasswordResetToken",
    "PendingChange",
    "SchoolYear",
    "Statement",
    "StatementLine",
    "User",
    "coop_login",
    "occe_code",
    "school_year_label",
    "school_year_start",
    "utcnow",
]
