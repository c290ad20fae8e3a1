"""Flask-Admin back office for OCCE 85 staff, at /admin.

`init_admin(app)` builds a fresh `Admin` and fresh views on every call, so every test app gets
its own. Every view inherits `StaffAccessMixin`; CSRF comes from the global CSRFProtect.
"""

from __future__ import annotations

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from admin.accounts import AccountAdmin
from admin.audit import AuditEventAdmin, OutboxAdmin
from admin.base import DashboardView
from admin.coops import CoopAdmin, CoopImportView
from admin.ledgers import EntryAdmin
from admin.membership import MembershipAdmin
from admin.settings import FederationAdmin, SchoolYearAdmin
from admin.users import StaffUserAdmin
from app.extensions import db
from app.models import Account, AuditEvent, Coop, Entry, Federation, Membership, OutboxEmail, SchoolYear, User
from app.security import csp_nonce


def init_admin(app: Flask) -> Admin:
    """Register the back office on `app` and record its blueprints as staff-only."""
    admin = Admin(
        app,
        name="OCCE 85 · back office",
        url="/admin",
        theme=Bootstrap4Theme(base_template="admin/coop85_base.html", swatch="default"),
        index_view=DashboardView(name="Tableau de bord", url="/admin", endpoint="admin"),
        csp_nonce_generator=csp_nonce,
    )
    admin.add_view(CoopAdmin(Coop, db, name="Coopératives", endpoint="admin_coops", category="Coopératives"))
    admin.add_view(CoopImportView(name="Importer des coopératives", endpoint="admin_coop_import",
                                  url="/admin/import-coops", category="Coopératives"))
    admin.add_view(MembershipAdmin(Membership, db, name="Adhésions", endpoint="admin_memberships",
                                   category="Coopératives"))
    admin.add_view(EntryAdmin(Entry, db, name="Opérations des cahiers", endpoint="admin_entries",
                              category="Coopératives"))
    admin.add_view(StaffUserAdmin(User, db, name="Comptes OCCE 85", endpoint="admin_staff", category="Réglages"))
    admin.add_view(AccountAdmin(Account, db, name="Plan comptable", endpoint="admin_accounts", category="Réglages"))
    admin.add_view(SchoolYearAdmin(SchoolYear, db, name="Années scolaires et tarifs", endpoint="admin_years",
                                   category="Réglages"))
    admin.add_view(FederationAdmin(Federation, db, name="OCCE 85", endpoint="admin_federation",
                                   category="Réglages"))
    admin.add_view(AuditEventAdmin(AuditEvent, db, name="Journal d'audit", endpoint="admin_audit",
                                   category="Suivi"))
    admin.add_view(OutboxAdmin(OutboxEmail, db, name="Courriels", endpoint="admin_outbox", category="Suivi"))
    app.extensions["admin_blueprints"] = frozenset(view.endpoint for view in admin._views)
    return admin
