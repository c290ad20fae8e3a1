"""The coop's home page: the checklist of the school year, one card per step (French text, endpoints)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, object_session

from app.formats import euros, fr_date
from app.identity import IDENTITY_FIELDS
from app.mandates import current_mandate
from app.membership import membership_of, previous_membership, year_of
from app.models import Coop, Membership, SchoolYear, school_year_start

# Fields without which the identity step is not complete (the phone and director are optional).
REQUIRED_IDENTITY = tuple(f for f in IDENTITY_FIELDS if f not in ("phone", "director_name"))
# How the home card names a missing field (short forms of the identity page's labels).
IDENTITY_NAMES = {
    "name": "nom de la coopérative",
    "school_name": "nom de l'école",
    "uai": "numéro UAI",
    "address": "adresse",
    "postal_code": "code postal",
    "city": "commune",
    "email": "e-mail",
    "bank_name": "banque",
    "iban": "IBAN",
    "bic": "BIC",
}


@dataclass(frozen=True)
class Step:
    """One card: `status` is done, todo, ongoing, waiting or soon (not built yet)."""

    key: str
    title: str
    status: str
    summary: str
    action_label: str | None = None
    endpoint: str | None = None
    deadline: date | None = None  # shown on the card while the step is still to do
    is_late: bool = False


def missing_identity_fields(coop: Coop) -> list[str]:
    return [field for field in REQUIRED_IDENTITY if not getattr(coop, field)]


def identity_step(coop: Coop) -> Step:
    """The identity card: complete, or which information is missing, by name."""
    missing = missing_identity_fields(coop)
    if not missing:
        return Step(
            "identity",
            "Identité de la coop",
            "done",
            "Informations complètes.",
            "Vérifier ou modifier",
            "coop.identity",
        )
    names = ", ".join(IDENTITY_NAMES.get(field, field) for field in missing)
    count = (
        f"{len(missing)} information à compléter" if len(missing) == 1 else f"{len(missing)} informations à compléter"
    )
    return Step("identity", "Identité de la coop", "todo", f"{count} : {names}.", "Compléter", "coop.identity")


def is_late(deadline: date | None, today: date | None) -> bool:
    return deadline is not None and today is not None and today > deadline


def late_note(deadline: date | None, today: date | None, what: str) -> str:
    """A polite sentence once the deadline has passed (empty before it, or without a deadline)."""
    if not is_late(deadline, today):
        return ""
    return f" La date limite est passée : {what} dès que possible ; en cas de difficulté, contactez l'OCCE 85."


def reports_deadline(year: SchoolYear) -> date | None:
    """The reports deadline of `year`, when it is a real one (after the year's last day, 31 August)."""
    deadline = year.reports_deadline
    return deadline if deadline is not None and deadline > year.ends_on else None


def _euros(cents: int | None) -> str:
    return euros(cents or 0)


def _paris_day(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y")


def membership_step(
    year: SchoolYear | None,
    membership: Membership | None,
    has_previous: bool,
    year_label: str,
    today: date | None = None,
) -> Step:
    """The membership card: where the adhésion of the year stands and what to do next.

    With `today`, a card still to do shows the year's membership deadline (or says politely that it
    has passed), and a membership committed after the deadline says so.
    """
    title = f"Adhésion {year_label}"
    deadline = year.membership_deadline if year is not None else None
    to_do = late_note(deadline, today, "pensez à vous engager")
    dated = {"deadline": deadline, "is_late": is_late(deadline, today)}
    endpoint = "membership.step"
    if year is None:
        return Step(
            "membership",
            title,
            "soon",
            "La campagne d'adhésion n'est pas encore ouverte : l'OCCE 85 n'a pas encore publié ses tarifs.",
        )
    if membership is None:
        summary = (
            "Vérifiez les effectifs de l'an dernier, puis engagez-vous comme mandataire."
            if has_previous
            else "Déclarez les classes et leurs effectifs, puis engagez-vous comme mandataire."
        )
        return Step("membership", title, "todo", summary + to_do, "Renouveler l'adhésion", endpoint, **dated)
    if membership.status == "draft":
        return Step(
            "membership",
            title,
            "todo",
            "Effectifs enregistrés : il reste l'engagement du mandataire." + to_do,
            "Reprendre l'adhésion",
            endpoint,
            **dated,
        )
    amount = _euros(membership.total_cents)
    committed_day = _paris_day(membership.committed_at)
    late = ""
    if deadline is not None and membership.committed_at is not None and committed_day:
        committed_on = membership.committed_at.replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris")).date()
        if committed_on > deadline:
            late = f" (après la date limite du {fr_date(deadline)} : c'est noté, merci)"
    if membership.status == "paid":
        return Step(
            "membership",
            title,
            "done",
            f"Adhésion réglée ({amount}). L'attestation d'adhésion et le certificat d'assurance sont disponibles.",
            "Télécharger les documents",
            endpoint,
        )
    if membership.status == "rejected":
        return Step(
            "membership",
            title,
            "todo",
            f"Le prélèvement de {amount} a été rejeté : vérifiez que le compte est approvisionné, l'OCCE 85 "
            "le présentera à nouveau.",
            "Voir l'adhésion",
            endpoint,
        )
    if membership.status == "committed" and membership.payment_method == "cheque":
        return Step(
            "membership",
            title,
            "todo",
            f"Engagée le {committed_day}{late}. À faire : envoyer un chèque de {amount} à l'OCCE 85.",
            "Voir l'adhésion",
            endpoint,
        )
    what = "en cours de prélèvement" if membership.status == "in_batch" else "sera prélevé par l'OCCE 85"
    return Step(
        "membership",
        title,
        "waiting",
        f"Engagée le {committed_day}{late} : le montant de {amount} {what}.",
        "Voir l'adhésion",
        endpoint,
    )


def _membership_card(
    session: Session | None, coop: Coop, today: date, year_label: str, year: SchoolYear | None = None
) -> Step:
    """`year`: this school year when already at hand (else read)."""
    if year is None and session is not None:
        year = year_of(session, today)
    membership = membership_of(session, coop, year) if year is not None else None
    has_previous = membership is None and year is not None and previous_membership(session, coop, year) is not None
    return membership_step(year, membership, has_previous, year_label, today)


def _ledger_card(session: Session | None, current, year_label: str) -> Step:
    """The cash-book card: the year's (`current`, this school year's ledger or None) bank, cash and advance
    balances and the lines left to point.

    A negative bank balance is allowed but shown as a warning, and the card then asks for a look.
    """
    from app import ledger as books
    from app.closing import has_entries

    title = f"Cahier de comptabilité {year_label}"
    if current is None or not has_entries(session, current):
        return Step(
            "ledger",
            title,
            "todo",
            "Aucune opération pour cette année : commencez par le report à "
            "nouveau (banque et caisse au 1er septembre), puis saisissez vos opérations.",
            "Ouvrir le cahier",
            "ledger.cahier_current",
        )
    balances, uncleared = books.balances_and_uncleared(session, current)
    summary = f"Banque : {_euros(balances.bank)} · caisse : {_euros(balances.cash)}"
    if balances.advance:
        summary += f" · régies d'avance en cours : {_euros(balances.advance)}"
    summary += f" · {uncleared} ligne(s) de banque à pointer." if uncleared else " · tout est pointé."
    warning = books.bank_warning(balances.bank)
    if warning:
        return Step("ledger", title, "todo", f"{warning} {summary}", "Ouvrir le cahier", "ledger.cahier_current")
    return Step("ledger", title, "ongoing", summary, "Ouvrir le cahier", "ledger.cahier_current")


def _with_entries(session: Session | None, ledger):
    """`ledger` (last year's) if it has operations, else None."""
    from app.closing import has_entries

    return ledger if ledger is not None and has_entries(session, ledger) else None


def _first_year_card(session: Session | None, current, title: str, label: str, next_label: str) -> Step:
    """No cash-book of last year on the portal: the coop kept it elsewhere (RETKOOP, a spreadsheet) or
    is new. Done once this year (`current`) starts from a typed opening; otherwise say the two ways forward."""
    from app import ledger as books

    if current is not None and books.opening_entry(session, current) is not None:
        return Step(
            "closing",
            title,
            "done",
            f"Pas de cahier {label} sur le portail : l'année {next_label} part du report à nouveau "
            "que vous avez saisi.",
        )
    return Step(
        "closing",
        title,
        "todo",
        f"Votre cahier {label} n'est pas sur le portail. Si vous l'avez tenu ailleurs (RETKOOP, tableur), "
        f"indiquez le report à nouveau {next_label} (soldes au 1er septembre et chèques ou remises en "
        f"attente), ou importez ou saisissez l'année {label} pour la clôturer ici.",
        "Ouvrir le cahier",
        "ledger.cahier_current",
    )


def _closing_card(session: Session | None, today: date, ledger, current) -> Step:
    """From 1 September: where the closing of last year's cash-book stands (`ledger`, from
    `checklist`, None without operations; `current`: this year's), and what to do next."""
    from app import closing

    last = school_year_start(today) - 1
    label, next_label = f"{last}-{last + 1}", f"{last + 1}-{last + 2}"
    title = f"Clôture du cahier {label}"
    if ledger is None:
        return _first_year_card(session, current, title, label, next_label)
    if ledger.is_open:
        return Step(
            "closing",
            title,
            "todo",
            f"L'année {label} est terminée : arrêté de caisse, solde du relevé au 31 août, puis clôture "
            f"définitive. Le report à nouveau {next_label} se fera tout seul.",
            "Clôturer le cahier",
            "yearend.closing_current",
        )
    bank, cash = closing.opening_balances(session, current) if current is not None else (0, 0)
    return Step(
        "closing",
        title,
        "done",
        f"Cahier {label} clôturé le {_paris_day(ledger.closed_at)}. Report à nouveau {next_label} : "
        f"banque {_euros(bank)}, caisse {_euros(cash)}.",
        "Voir la clôture",
        "yearend.closing_current",
    )


def _reports_card(session: Session | None, coop: Coop, today: date, ledger) -> Step:
    """Where last year's reports (CRA, CRF, quitus, documents) stand (`ledger`: last year's, from
    `checklist`, None without operations), and what to do next."""
    from app.annual_report import find_report

    last = school_year_start(today) - 1
    label = f"{last}-{last + 1}"
    title = f"Comptes rendus {label} (CRA / CRF)"
    if ledger is None:
        return Step(
            "reports",
            title,
            "done",
            f"Pas de cahier {label} sur le portail : s'il a été tenu ailleurs, envoyez son compte rendu comme "
            f"d'habitude ; si vous l'importez ou le saisissez ici, son compte rendu se fera ici.",
        )
    deadline = reports_deadline(ledger.school_year)
    before = late_note(deadline, today, "envoyez les comptes rendus")
    dated = {"deadline": deadline, "is_late": is_late(deadline, today)}
    report = find_report(session, ledger)
    endpoint = "yearend.report_current"
    if report is not None and report.status == "returned":
        return Step(
            "reports",
            title,
            "todo",
            f"L'OCCE 85 vous a renvoyé le compte rendu : {report.return_reason}",
            "Reprendre le compte rendu",
            endpoint,
            **dated,
        )
    if ledger.is_open:
        return Step(
            "reports",
            title,
            "todo",
            f"Après la clôture du cahier {label} : compte rendu d'activités, "
            f"compte rendu financier, quitus et justificatifs.{before}",
            **dated,
        )
    if report is None or report.status == "draft":
        return Step(
            "reports",
            title,
            "todo",
            "À faire : compte rendu d'activités, quitus signé par les "
            f"vérificateurs, relevé au 31 août et justificatifs, puis envoi à l'OCCE 85.{before}",
            "Remplir les comptes rendus",
            endpoint,
            **dated,
        )
    if report.status == "submitted":
        return Step(
            "reports",
            title,
            "waiting",
            f"Envoyé le {_paris_day(report.submitted_at)} : l'OCCE 85 va le vérifier.",
            "Voir le compte rendu",
            endpoint,
        )
    return Step(
        "reports",
        title,
        "done",
        f"Approuvé par l'OCCE 85 le {_paris_day(report.approved_at)}.",
        "Voir le compte rendu",
        endpoint,
    )


def checklist(coop: Coop, today: date, year_label: str, *, membership_card: Step | None = None) -> list[Step]:
    """The year's steps with their status and next action, in the order a mandataire takes them.

    The membership card is looked up through the coop's session unless `membership_card` is given.
    """
    mandate = current_mandate(coop, today)
    from app import ledger as books
    from app import mandates as _mandates  # the mandate card; imported here: app.mandates imports this module

    session = object_session(coop)
    status, summary, action = _mandates.home_card(session, coop, mandate)
    # this year's ledger and last year's, looked up together once for the cards that show them
    start = school_year_start(today)
    ledgers = books.find_ledgers(session, coop.id, (start, start - 1)) if session is not None else {}
    current = ledgers.get(start)
    last_year = _with_entries(session, ledgers.get(start - 1))
    return [
        identity_step(coop),
        membership_card or _membership_card(session, coop, today, year_label, current and current.school_year),
        _ledger_card(session, current, year_label),
        _closing_card(session, today, last_year, current),
        _reports_card(session, coop, today, last_year),
        Step("mandate", "Mandataire", status, summary + coming_mandate_note(coop, today), action, "mandates.step"),
    ]


def coming_mandate_note(coop: Coop, today: date) -> str:
    """Once the change is done and the new mandate starts later: who takes over, and from when."""
    coming = [m for m in coop.mandates if m.role == "mandataire" and m.started_on > today]
    if not coming:
        return ""
    first = min(coming, key=lambda m: m.started_on)
    return f" À partir du {fr_date(first.started_on)}, {first.full_name} sera mandataire de la coopérative."
