"""The campaign as OCCE 85 staff follow it: where every coop stands, per school year, and reminders.

Steps and states:
- ``adhesion``: the membership's status (draft, committed, in_batch, paid, rejected) or ``absente``;
- ``cloture``: the ledger of the year ``cloturee``, ``ouverte`` or ``absente``;
- ``comptes_rendus``: the annual report's status (draft, submitted, returned, approved) or ``absent``;
- ``mandataire``: a change of mandataire dossier waiting for OCCE 85 (submitted, validated, sent_to_bank);
- ``retard``: the coops late on a deadline of the school year, on the day given (``adhesion``: membership
  not committed after the membership deadline; ``comptes_rendus``: reports not sent after the reports
  deadline, a report sent back to the coop included). No deadline set, or not passed yet: nobody is late.
Every count is one grouped query: the dashboard costs the same with 12 or 500 coops.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit, formats
from app.errors import DomainError
from app.mail import queue_email
from app.models import Coop, Ledger, Membership, SchoolYear, User, school_year_label
from app.models.mandate_change import MandateChange
from app.models.reports import AnnualReport

STEPS = {
    "adhesion": (
        "Adhésions",
        {
            "absente": "pas commencée",
            "draft": "brouillon",
            "committed": "engagée",
            "in_batch": "en prélèvement",
            "paid": "réglée",
            "rejected": "prélèvement rejeté",
        },
    ),
    "cloture": ("Clôture des cahiers", {"absente": "pas de cahier", "ouverte": "non clôturé", "cloturee": "clôturé"}),
    "comptes_rendus": (
        "Comptes rendus (CRA / CRF)",
        {
            "absent": "pas commencé",
            "draft": "brouillon",
            "submitted": "envoyé, à examiner",
            "returned": "renvoyé à la coop",
            "approved": "approuvé",
        },
    ),
    "mandataire": (
        "Changements de mandataire en attente",
        {"submitted": "à valider", "validated": "validé, à envoyer", "sent_to_bank": "envoyé à la banque"},
    ),
    "retard": (
        "En retard sur une date limite",
        {
            "adhesion": "adhésion non engagée après la date limite",
            "comptes_rendus": "comptes rendus non envoyés après la date limite",
        },
    ),
}

# The states of a step that are late once its deadline has passed.
NOT_COMMITTED = ("absente", "draft")
NOT_SUBMITTED = ("absent", "draft", "returned")


@dataclass(frozen=True)
class StepCounts:
    step: str
    title: str
    counts: dict[str, int]  # state -> number of coops (every state of STEPS, zeros included)


def _school_year(session: Session, start_year: int) -> SchoolYear | None:
    return session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == start_year))


def _year_id(start_year: int):
    """The school year's id inside the counting statement (no statement of its own; NULL: no such year)."""
    return sa.select(SchoolYear.id).where(SchoolYear.start_year == start_year).scalar_subquery()


def _state_of_each_coop(session: Session, step: str, start_year: int, today: date | None = None) -> sa.Select:
    """SELECT coop id, state for the active coops (the state column is named `state`).

    `today` only matters to the ``retard`` step (without it, nobody is late)."""
    if step == "retard":
        return _late_coops(session, start_year, today)
    year_id = _year_id(start_year)
    if step == "adhesion":
        sub = sa.select(Membership.coop_id, Membership.status).where(Membership.school_year_id == year_id).subquery()
        return (
            sa.select(Coop.id, sa.func.coalesce(sub.c.status, "absente").label("state"))
            .outerjoin(sub, sub.c.coop_id == Coop.id)
            .where(Coop.is_active)
        )
    if step == "cloture":
        sub = sa.select(Ledger.coop_id, Ledger.status).where(Ledger.school_year_id == year_id).subquery()
        state = sa.case((sub.c.status == "closed", "cloturee"), (sub.c.status == "open", "ouverte"), else_="absente")
        return sa.select(Coop.id, state.label("state")).outerjoin(sub, sub.c.coop_id == Coop.id).where(Coop.is_active)
    if step == "comptes_rendus":
        sub = (
            sa.select(AnnualReport.coop_id, AnnualReport.status)
            .where(AnnualReport.school_year_id == year_id)
            .subquery()
        )
        return (
            sa.select(Coop.id, sa.func.coalesce(sub.c.status, "absent").label("state"))
            .outerjoin(sub, sub.c.coop_id == Coop.id)
            .where(Coop.is_active)
        )
    if step == "mandataire":
        return sa.select(MandateChange.coop_id, MandateChange.status.label("state")).where(
            MandateChange.status.in_(tuple(STEPS["mandataire"][1]))
        )
    raise ValueError(step)


def _late_coops(session: Session, start_year: int, today: date | None) -> sa.Select:
    """SELECT coop id, state ('adhesion' or 'comptes_rendus') of the coops late on a passed deadline."""
    year = _school_year(session, start_year)
    parts = []
    for step, deadline, late_states in (
        ("adhesion", year.membership_deadline if year else None, NOT_COMMITTED),
        ("comptes_rendus", year.reports_deadline if year else None, NOT_SUBMITTED),
    ):
        states = _state_of_each_coop(session, step, start_year).subquery()
        passed = today is not None and deadline is not None and today > deadline
        parts.append(
            sa.select(states.c.id.label("coop_id"), sa.literal(step).label("state")).where(
                states.c.state.in_(late_states), sa.true() if passed else sa.false()
            )
        )
    return sa.union_all(*parts).subquery().select()


def deadlines(session: Session, start_year: int) -> dict[str, date | None]:
    """The school year's deadlines by late state of the ``retard`` step (None: not set)."""
    year = _school_year(session, start_year)
    return {
        "adhesion": year.membership_deadline if year else None,
        "comptes_rendus": year.reports_deadline if year else None,
    }


def dashboard(session: Session, start_year: int, today: date | None = None) -> list[StepCounts]:
    """Counts of coops per state for every step of the school year starting in `start_year`
    (the late coops as of `today`)."""
    result = []
    for step, (title, states) in STEPS.items():
        query = _state_of_each_coop(session, step, start_year, today).subquery()
        counts = dict(session.execute(sa.select(query.c.state, sa.func.count()).group_by(query.c.state)).all())
        if step == "retard":
            title = late_title(session, start_year, today)
        result.append(StepCounts(step, title, {state: int(counts.get(state, 0)) for state in states}))
    return result


def late_title(session: Session, start_year: int, today: date | None) -> str:
    """« En retard sur une date limite (au 29/11/2025 : adhésion avant le 15/10/2025, …) »."""
    limits = deadlines(session, start_year)
    parts = [
        f"{what} avant le {formats.fr_date(limits[state])}" if limits[state] else f"{what} : pas de date limite fixée"
        for state, what in (("adhesion", "adhésion"), ("comptes_rendus", "comptes rendus"))
    ]
    when = f"au {formats.fr_date(today)} : " if today else ""
    return f"{STEPS['retard'][0]} ({when}{', '.join(parts)})"


def _ids_in_state(session: Session, step: str, state: str, start_year: int, today: date | None) -> sa.Select:
    if step not in STEPS or state not in STEPS[step][1]:
        raise ValueError(f"{step}/{state}")
    query = _state_of_each_coop(session, step, start_year, today).subquery()
    ids = sa.select(query.c[query.c.keys()[0]]).where(query.c.state == state)
    return ids.distinct() if step == "mandataire" else ids  # a coop may have two dossiers in one state


def coops_in_state(session: Session, step: str, state: str, start_year: int, today: date | None = None) -> list[Coop]:
    """The coops of a dashboard count (for its reminder), in the order of their numbers."""
    ids = _ids_in_state(session, step, state, start_year, today)
    return list(session.scalars(sa.select(Coop).where(Coop.id.in_(ids)).order_by(Coop.number)))


LIST_PAGE_SIZE = 100


@dataclass(frozen=True)
class CoopPage:
    """One page of the coops of a dashboard count, by coop number (keyset: no offset to skip)."""

    coops: list[Coop]
    total: int  # coops in that state, every page
    after: int | None  # the page starts after this coop number (None: first page)
    next_after: int | None  # where the next page starts after (None: this is the last page)


def coops_page(
    session: Session,
    step: str,
    state: str,
    start_year: int,
    today: date | None = None,
    *,
    after: int | None = None,
    size: int | None = None,
) -> CoopPage:
    """The coops of a dashboard count whose number is above `after`, `size` (LIST_PAGE_SIZE) at most,
    with their total."""
    size = size or LIST_PAGE_SIZE
    ids = _ids_in_state(session, step, state, start_year, today).subquery()
    total = session.scalar(sa.select(sa.func.count()).select_from(ids))
    query = sa.select(Coop).join(ids, ids.c[0] == Coop.id)  # a join, not IN: walked in number order
    if after is not None:
        query = query.where(Coop.number > after)
    coops = list(session.scalars(query.order_by(Coop.number).limit(size + 1)))
    next_after = coops[size - 1].number if len(coops) > size else None
    return CoopPage(coops[:size], int(total or 0), after, next_after)


REMINDER_BODY = """Bonjour,

Sur le portail Coop 85, l'étape « {etape} » de la coopérative {identifiant} ({nom})
pour l'année {annee} est encore à l'état « {etat} ».

Pouvez-vous la compléter dès que possible ? Le portail vous guide pas à pas ;
en cas de difficulté, répondez simplement à ce message.

Merci et bonne journée,
L'équipe de l'OCCE 85
"""


def year_label(start_year: int) -> str:
    """2025 -> '2025-2026'."""
    return school_year_label(start_year)


LATE_BODY = """Bonjour,

Sur le portail Coop 85, {quoi} de la coopérative {identifiant} ({nom})
pour l'année {annee} était attendu avant le {date_limite} : il reste à faire.

Pouvez-vous vous en occuper dès que possible ? Le portail vous guide pas à pas ;
en cas de difficulté, répondez simplement à ce message.

Merci et bonne journée,
L'équipe de l'OCCE 85
"""


def default_reminder(step: str, state: str, start_year: int, deadline: date | None = None) -> tuple[str, str]:
    """The subject and body offered for a reminder of the coops at `state` of `step` (staff edit them);
    `deadline`: the passed deadline of a late step."""
    if step == "retard":
        membership = state == "adhesion"
        step_name = "Adhésion" if membership else "Comptes rendus"
        subject = f"OCCE 85 — {step_name} {year_label(start_year)} : date limite dépassée"
        what = "l'engagement de l'adhésion" if membership else "l'envoi des comptes rendus (CRA et CRF)"
        limit = formats.fr_date(deadline) if deadline else "la date limite"
        return subject, LATE_BODY.replace("{quoi}", what).replace("{date_limite}", limit)
    title, states = STEPS[step]
    subject = f"OCCE 85 — {title} {year_label(start_year)} : action attendue"
    return subject, REMINDER_BODY.replace("{etape}", title).replace("{etat}", states[state])


PLACEHOLDERS = ("nom", "identifiant", "ecole", "annee")
_PLACEHOLDER = re.compile(r"\{([^{}\n]*)\}")


def unknown_placeholders(text: str) -> list[str]:
    """The `{…}` of `text` that are not one of PLACEHOLDERS, in order, each once (e.g. ['{inconnu}'])."""
    found = [f"{{{name}}}" for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS]
    return list(dict.fromkeys(found))


def placeholder_problem(text: str) -> str | None:
    """The French message for a reminder text with unknown placeholders, or None."""
    unknown = unknown_placeholders(text)
    if not unknown:
        return None
    known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    return (
        f"{', '.join(unknown)} : ce n'est pas un champ connu, il serait envoyé tel quel. "
        f"Corrigez-le ou retirez-le (champs possibles : {known})."
    )


def render_reminder(text: str, coop: Coop, year_label: str) -> str:
    """Fill the placeholders a staff member may type: {nom}, {identifiant}, {ecole}, {annee}."""
    return (
        text.replace("{nom}", coop.name)
        .replace("{identifiant}", coop.login)
        .replace("{ecole}", coop.school_name)
        .replace("{annee}", year_label)
    )


def _is_header_safe(value: str) -> bool:
    # the rule of app.mail.queue_email: no line break, no control character in a header
    return not any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value)


@dataclass(frozen=True)
class Reminders:
    """What a reminder did: mails queued, coops without an address, coops skipped because their
    address or their name (in the subject) holds a line break or a control character."""

    queued: int
    missing: list[Coop]
    unusable: list[Coop]


def queue_reminders(session: Session, coops: list[Coop], *, subject: str, body: str, year_label: str) -> Reminders:
    """One outbox mail per coop that has a usable address; a bad one is skipped and reported, never
    a failure for every coop. Raises DomainError (field subject or body) on an unknown placeholder."""
    for field, text in (("subject", subject), ("body", body)):
        problem = placeholder_problem(text)
        if problem:
            raise DomainError(problem, field=field)
    queued, missing, unusable = 0, [], []
    for coop in coops:
        if not coop.email:
            missing.append(coop)
            continue
        to = coop.email.strip()
        rendered = render_reminder(subject, coop, year_label)[:255]
        if not _is_header_safe(to) or not _is_header_safe(rendered):
            unusable.append(coop)
            continue
        queue_email(session, to=to, subject=rendered, text=render_reminder(body, coop, year_label))
        queued += 1
    return Reminders(queued, missing, unusable)


def send_reminders(
    session: Session,
    step: str,
    state: str,
    start_year: int,
    *,
    subject: str,
    body: str,
    by: User | None,
    ip: str = "",
    today: date | None = None,
) -> Reminders:
    """Queue the reminder to every coop at `state` of `step` and audit it (coops skipped included);
    `today` decides who is late for the ``retard`` step."""
    coops = coops_in_state(session, step, state, start_year, today)
    outcome = queue_reminders(session, coops, subject=subject, body=body, year_label=year_label(start_year))
    audit.record(
        session,
        "campaign.reminder",
        actor=by,
        entity="campaign",
        after={
            "step": step,
            "state": state,
            "year": start_year,
            "queued": outcome.queued,
            "without_address": [coop.login for coop in outcome.missing],
            "unusable_address": [coop.login for coop in outcome.unusable],
            "subject": subject[:200],
        },
        ip=ip,
    )
    return outcome
