"""Which mail goes to whom on which state change, for both faces (coop face, back office, CLI).

Each function renders `templates/mail/<name>.txt` (first line `Subject: …`) and adds it to the
outbox in the caller's transaction (`app.mail.queue_email`): the mail exists if and only if the
change it reports is committed. A coop without an e-mail address gets no mail (the change is still
made). Delivery is `flask mail send`.

| state change                                   | function                  | to                      |
|------------------------------------------------|---------------------------|-------------------------|
| password reset asked                           | `password_reset`          | the account's address   |
| membership committed (engagement)              | `membership_committed`    | coop                    |
| membership paid (cheque, debit settled)        | `membership_paid`         | coop                    |
| run created: the coop will be debited          | `debit_prenotification(s)` | coop                   |
| debit rejected before settlement               | `membership_debit_rejected` | coop                  |
| debit returned / refunded after settlement     | `membership_debit_returned` | coop                  |
| mandate dossier submitted/returned/validated/… | `mandate_status`          | coop (+ new mandataire) |
| bank document added to a dossier               | `mandate_bank_document`   | coop                    |
| reports submitted                              | `report_submitted`        | coop                    |
| reports approved / returned by staff           | `report_reviewed`         | coop                    |
| year reopened by staff (report sent back)      | `report_reopened`         | coop                    |
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import current_app, render_template
from sqlalchemy.orm import Session

from app import clock
from app.debits import REASON_LABELS, Return, reason_label
from app.formats import fr_date, fr_datetime
from app.mail import queue_email, queue_emails
from app.mandates import REASONS, STATUS_LABELS, bank_of, is_credit_mutuel
from app.membership import frozen_fee
from app.models import (
    AnnualReport,
    Coop,
    Debit,
    DebitBatch,
    Federation,
    MandateChange,
    Membership,
    OutboxEmail,
    SchoolYear,
    User,
    coop_login,
    school_year_label,
)

# Mail sent to the coop when its mandate dossier reaches a status.
MANDATE_STATUS_MAILS = {
    "submitted": "mandate_submitted",
    "returned": "mandate_returned",
    "validated": "mandate_validated",
    "sent_to_bank": "mandate_sent_to_bank",
    "completed": "mandate_completed",
}


def send(session: Session, to: str, template: str, **context: Any) -> OutboxEmail:
    """Render templates/mail/<template>.txt and queue it in the outbox (same transaction)."""
    rendered = render_template(f"mail/{template}.txt", public_url=current_app.config["PUBLIC_URL"], **context)
    subject, text = _split(rendered)
    return queue_email(session, to=to, subject=subject, text=text)


def _split(rendered: str) -> tuple[str, str]:
    """(subject, body) of a rendered mail template (first line `Subject: …`)."""
    first, _, body = rendered.partition("\n")
    return first.removeprefix("Subject:").strip(), body.lstrip("\n")


def _to_coop(session: Session, coop: Coop, template: str, **context: Any) -> OutboxEmail | None:
    if not coop.email:
        return None
    return send(session, coop.email, template, coop=coop, **context)


def password_reset(session: Session, user: User, link: str) -> OutboxEmail:
    return send(session, user.contact_email, "password_reset", user=user, link=link)


# -- membership ------------------------------------------------------------------------------------


def membership_committed(session: Session, membership: Membership) -> OutboxEmail | None:
    """The acknowledgement of the engagement: figures frozen, reference, what comes next."""
    return _to_coop(
        session,
        membership.coop,
        "membership_committed",
        membership=membership,
        year=membership.school_year,
        fee=frozen_fee(membership),
        federation=session.scalar(sa.select(Federation).limit(1)),
        committed_at=fr_datetime(membership.committed_at),
    )


def membership_paid(session: Session, membership: Membership) -> OutboxEmail | None:
    """Payment recorded: the certificates are ready."""
    return _to_coop(session, membership.coop, "membership_paid", membership=membership, year=membership.school_year)


def membership_debit_rejected(session: Session, membership: Membership, debit: Debit) -> OutboxEmail | None:
    """The bank rejected the debit before settlement: reason, nothing was taken, what comes next."""
    reason = reason_label(debit.reason_code) or debit.reject_reason
    if debit.reason_code and debit.reject_reason and debit.reject_reason != REASON_LABELS.get(debit.reason_code):
        reason = f"{reason} ({debit.reject_reason})"
    return _to_coop(
        session, membership.coop, "membership_debit_rejected", membership=membership, debit=debit, reason=reason
    )


def membership_debit_returned(session: Session, debit: Debit, returned: Return) -> OutboxEmail | None:
    """The settled debit came back: the membership is unpaid again, the reversing entry, what to do."""
    return _to_coop(
        session,
        debit.coop,
        "membership_debit_returned",
        membership=returned.membership,
        debit=debit,
        reason=reason_label(debit.reason_code),
        reversal=returned.reversal,
        refunded=returned.refunded,
    )


def _masked_iban(iban: str) -> str:
    """The IBAN as a pre-notification shows it: FR76 … 0189."""
    return f"{iban[:4]} … {iban[-4:]}"


def debit_prenotification(session: Session, debit: Debit, federation: Federation) -> OutboxEmail | None:
    """Pre-notification (SEPA rulebook): amount, collection date, RUM and the federation's ICS, sent when
    the run is created, at least the configured number of days before the collection."""
    return _to_coop(
        session,
        debit.coop,
        "debit_prenotification",
        membership=debit.membership,
        debit=debit,
        batch=debit.batch,
        federation=federation,
        masked_iban=_masked_iban(debit.iban),
    )


def debit_prenotifications(session: Session, batch: DebitBatch, federation: Federation) -> int:
    """`debit_prenotification` for every debit of a run just created, as one read and one write: the
    debits, coops and memberships come back as plain rows, the template is compiled once and rendered
    for each coop with the same values as the single mail, and the outbox rows go in one INSERT.
    Returns the number of mails queued (coops without an e-mail address get none)."""
    template = current_app.jinja_env.get_template("mail/debit_prenotification.txt")
    public_url = current_app.config["PUBLIC_URL"]
    rows = session.execute(
        sa.select(
            Debit.amount_cents,
            Debit.iban,
            Debit.mandate_ref,
            Coop.number,
            Coop.name,
            Coop.email,
            Membership.id,
            Membership.reference,
            SchoolYear.start_year,
        )
        .join(Coop, Coop.id == Debit.coop_id)
        .join(Membership, Membership.id == Debit.membership_id)
        .join(SchoolYear, SchoolYear.id == Membership.school_year_id)
        .where(Debit.batch_id == batch.id, Coop.email != "", Coop.email.is_not(None))
        .order_by(Debit.id)
    )
    plain_batch = SimpleNamespace(collection_date=batch.collection_date)
    plain_federation = SimpleNamespace(creditor_id=federation.creditor_id)

    def mails():
        for amount, iban, mandate_ref, number, name, email, membership_id, reference, start_year in rows:
            # A context of these values only (`shared`): `render` would copy the app's Jinja globals into
            # every one of thousands of contexts, and the mail uses none of them.
            values = dict(
                public_url=public_url,
                coop=SimpleNamespace(login=coop_login(number), name=name),
                membership=SimpleNamespace(
                    id=membership_id,
                    reference=reference,
                    school_year=SimpleNamespace(label=school_year_label(start_year)),
                ),
                debit=SimpleNamespace(amount_cents=amount, mandate_ref=mandate_ref, iban=iban),
                batch=plain_batch,
                federation=plain_federation,
                masked_iban=_masked_iban(iban),
            )
            rendered = "".join(template.root_render_func(template.new_context(values, shared=True)))
            subject, text = _split(rendered)
            yield email, subject, text

    return queue_emails(session, mails(), now=clock.now())


# -- change of mandataire --------------------------------------------------------------------------


def mandate_status(session: Session, change: MandateChange) -> None:
    """Tell the coop (and, once the delegation exists, the new mandataire) where its dossier stands."""
    coop = change.coop
    bank = bank_of(change)
    context = {
        "coop": coop,
        "change": change,
        "bank": bank,
        "status_label": STATUS_LABELS[change.status],
        "reasons": REASONS,
        "is_credit_mutuel": is_credit_mutuel(bank),
    }
    if coop.email:
        send(session, coop.email, MANDATE_STATUS_MAILS[change.status], **context)
    if change.status == "completed" and change.incoming_email and change.incoming_email != coop.email:
        send(session, change.incoming_email, "mandate_completed_incoming", **context)


def mandate_bank_document(session: Session, change: MandateChange) -> OutboxEmail | None:
    return _to_coop(session, change.coop, "mandate_bank_document", change=change, bank=bank_of(change))


# -- reports (CRA / CRF) ---------------------------------------------------------------------------


def report_submitted(session: Session, report: AnnualReport, crf: Any) -> OutboxEmail | None:
    year = report.ledger.school_year
    return _to_coop(
        session,
        report.coop,
        "report_submitted",
        report=report,
        crf=crf,
        year_label=year.label,
        submitted_on=fr_date(clock.today()),
    )


def report_reviewed(session: Session, report: AnnualReport, template: str, **context: Any) -> OutboxEmail | None:
    """`report_approved`, `report_returned_review` (with `reason`) or `report_returned`."""
    year = report.ledger.school_year
    return _to_coop(
        session, report.coop, template, report=report, year_label=year.label, year=year.start_year, **context
    )


def report_reopened(session: Session, report: AnnualReport) -> OutboxEmail | None:
    """A staff reopening sent the submitted report back to the coop."""
    year = report.ledger.school_year
    return _to_coop(
        session,
        report.coop,
        "report_returned",
        year_label=year.label,
        year=year.start_year,
        reason=report.return_reason,
    )
