"""Flask-Admin back office for OCCE 85 staff, at /admin.

`init_admin(app)` builds a fresh `Admin` and fresh views on every call, so every test app gets
its own. Every view inherits `StaffAccessMixin`; CSRF comes from the global CSRFProtect.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, request
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from admin.accounts import AccountAdmin
from admin.audit import AuditEventAdmin, OutboxAdmin
from admin.base import DashboardView
from admin.campaign import CampaignView
from admin.coops import CoopAdmin, CoopImportView
from admin.debits import DebitRunView
from admin.exports import ExportView
from admin.ledgers import EntryAdmin
from admin.mandates import MandateAdmin, MandateChangeAdmin, MandateDossierView
from admin.membership import MembershipAdmin
from admin.reports import AnnualReportAdmin, ClosingAdminView
from admin.review import ReviewView
from admin.settings import FederationAdmin, SchoolYearAdmin
from admin.users import StaffUserAdmin
from app.extensions import db
from app.models import (
    Account,
    AnnualReport,
    AuditEvent,
    Coop,
    Entry,
    Federation,
    Mandate,
    MandateChange,
    Membership,
    OutboxEmail,
    SchoolYear,
    User,
)
from app.web.security import csp_nonce


def init_admin(app: Flask) -> Admin:
    """Register the back office on `app` and record its blueprints as staff-only."""
    admin = Admin(
        app,
        name="OCCE 85 · back office",
        url="/admin",
        theme=Bootstrap4Theme(base_template="admin/coop85_base.html", swatch="default"),
        index_view=DashboardView(name="Tableau de bord", url="/admin", endpoint="admin"),
        csp_nonce_generator=csp_nonce,
        # French messages Flask-Admin's own catalogue lacks (merged with it by Flask-Babel).
        translations_path=str(Path(__file__).resolve().parent.parent / "app" / "translations"),
    )
    admin.add_view(CoopAdmin(Coop, db, name="Coopératives", endpoint="admin_coops", category="Coopératives"))
    admin.add_view(
        CoopImportView(
            name="Importer des coopératives",
            endpoint="admin_coop_import",
            url="/admin/import-coops",
            category="Coopératives",
        )
    )
    admin.add_view(
        MembershipAdmin(Membership, db, name="Adhésions", endpoint="admin_memberships", category="Coopératives")
    )
    admin.add_view(
        DebitRunView(name="Prélèvements", endpoint="admin_debits", url="/admin/prelevements", category="Coopératives")
    )
    admin.add_view(
        ReviewView(
            name="Examen des comptes rendus",
            endpoint="admin_review",
            url="/admin/comptes-rendus",
            category="Coopératives",
        )
    )
    admin.add_view(CampaignView(name="Campagne", endpoint="admin_campaign", url="/admin/campagne"))
    admin.add_view(ExportView(name="Exports", endpoint="admin_exports", url="/admin/exports", category="Suivi"))
    admin.add_view(
        EntryAdmin(Entry, db, name="Opérations des cahiers", endpoint="admin_entries", category="Coopératives")
    )
    admin.add_view(
        AnnualReportAdmin(
            AnnualReport, db, name="Tous les comptes rendus", endpoint="admin_reports", category="Coopératives"
        )
    )
    admin.add_view(
        ClosingAdminView(
            name="Cahiers clôturés", endpoint="admin_closings", url="/admin/clotures", category="Coopératives"
        )
    )
    admin.add_view(
        MandateChangeAdmin(
            MandateChange,
            db,
            name="Changements de mandataire",
            endpoint="admin_mandate_changes",
            category="Coopératives",
        )
    )
    admin.add_view(
        MandateDossierView(
            name="Dossier de changement de mandataire", endpoint="admin_mandate_dossiers", url="/admin/mandataires"
        )
    )
    admin.add_view(
        MandateAdmin(Mandate, db, name="Mandataires (historique)", endpoint="admin_mandates", category="Coopératives")
    )
    admin.add_view(StaffUserAdmin(User, db, name="Comptes OCCE 85", endpoint="admin_staff", category="Réglages"))
    admin.add_view(AccountAdmin(Account, db, name="Plan comptable", endpoint="admin_accounts", category="Réglages"))
    admin.add_view(
        SchoolYearAdmin(SchoolYear, db, name="Années scolaires et tarifs", endpoint="admin_years", category="Réglages")
    )
    admin.add_view(FederationAdmin(Federation, db, name="OCCE 85", endpoint="admin_federation", category="Réglages"))
    admin.add_view(AuditEventAdmin(AuditEvent, db, name="Journal d'audit", endpoint="admin_audit", category="Suivi"))
    admin.add_view(OutboxAdmin(OutboxEmail, db, name="Courriels", endpoint="admin_outbox", category="Suivi"))
    app.extensions["admin_blueprints"] = frozenset(view.endpoint for view in admin._views)
    app.extensions["admin_csp_hashes"] = inline_handler_hashes(admin)
    app.after_request(french_admin_pages)
    return admin


def french_admin_pages(response):
    """after_request: Flask-Admin's layout writes a bare `<html>` (no block to set attributes): the back
    office's pages are declared French, for screen readers and the accessibility checks."""
    if (
        request.blueprint in current_app.extensions.get("admin_blueprints", ())
        and response.mimetype == "text/html"
        and not response.direct_passthrough
    ):
        body = response.get_data()
        if b"<html>" in body[:400]:
            response.set_data(body.replace(b"<html>", b'<html lang="fr">', 1))
    return response


def inline_handler_hashes(admin: Admin) -> str:
    """CSP hashes of the few inline handlers Flask-Admin 2.2's templates still write (onclick on the
    actions menu, the filter menu and the inline « Add » button; javascript:void(0) links).

    Only these exact strings are allowed (CSP 3 'unsafe-hashes'): an injected handler would still be
    blocked. They are computed from the registered views, so a new action is covered automatically.
    """
    import base64
    import hashlib

    import sqlalchemy as sa

    handlers = {"return false;", "void(0)", "javascript:void(0)"}
    for view in admin._views:
        for name, _label in getattr(view, "_actions", []) or []:
            handlers.add(f"return modelActions.execute('{name}');")
        model = getattr(view, "model", None)
        for inline in getattr(view, "inline_models", None) or []:
            inline_model = getattr(inline, "model", inline)
            for relationship in sa.inspect(model).relationships:
                if relationship.mapper.class_ is inline_model:
                    handlers.add(f"faForm.addInlineField(this, '{relationship.key}');")
    digests = sorted(base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() for text in handlers)
    return "'unsafe-hashes' " + " ".join(f"'sha256-{digest}'" for digest in digests)
