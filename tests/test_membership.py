"""Membership (adhésion): fee computation, prefill, engagement and freezing, status transitions, the
coop-face step (PRG, errors, rows without JavaScript, permissions, tenancy), the back-office cheque
action, mails in the outbox, and the attestation / certificate PDFs (text extracted with pypdf).
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import sqlalchemy as sa

from app.errors import DomainError, ValidationErrors
from app.extensions import db
from app.membership import (
    TRANSITIONS,
    ClassHeadcount,
    Headcounts,
    Rates,
    bank_takes_no_debit,
    commit_membership,
    compute_fee,
    frozen_fee,
    prefill,
    property_surcharge,
    record_cheque,
    record_debit_paid,
    record_debit_returned,
    save_draft,
    transition,
)
from app.models import (
    AuditEvent,
    Coop,
    Federation,
    Membership,
    MembershipClass,
    OutboxEmail,
    SchoolYear,
    school_year_start,
)
from app.web.home import checklist
from tests.conftest import DEFAULT_MOMENT
from tests.helpers import pdf_download_text

# DOMAIN.md §6: 2,05 € per pupil and per adult, insurance 0,25 € per insured member, property above
# 2 000 € at 0,00688 € per euro.
DOMAIN_RATES = Rates(
    pupil_fee_cents=205,
    adult_fee_cents=205,
    insurance_fee_cents=25,
    property_threshold_cents=200_000,
    property_rate_ppm=6880,
)
CURRENT = school_year_start(DEFAULT_MOMENT.date())  # the clock is pinned (autouse fixture below)
LAST = CURRENT - 1
LAST_CLASSES = [("CP de Mme Roy", "CP", 22, 1), ("CE1-CE2", "CE1-CE2", 25, 1)]


@pytest.fixture(autouse=True)
def _pinned_clock(clock):
    """Every test of this module runs on 15 September 2025 (DEFAULT_MOMENT), whatever the real date."""


def _headcounts(classes, atsem=0, aesh=0, others=0, property_cents=0) -> Headcounts:
    return Headcounts(
        tuple(ClassHeadcount(f"Classe {i}", "", p, t) for i, (p, t) in enumerate(classes)),
        atsem=atsem,
        aesh=aesh,
        other_adults=others,
        property_value_cents=property_cents,
    )


# --- Fee computation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("classes", "adults", "property_cents", "rates", "cotisation", "assurance", "surcharge", "total"),
    [
        # one class of 25 with its teacher: 26 coopérateurs at 2,05 €, 26 insured at 0,25 €
        ([(25, 1)], (0, 0, 0), 0, DOMAIN_RATES, 5330, 650, 0, 5980),
        # three classes, ATSEM, AESH and another adult: 72 pupils + 8 adults = 80 insured
        ([(22, 1), (24, 1), (26, 2)], (2, 1, 1), 0, DOMAIN_RATES, 16400, 2000, 0, 18400),
        # DOMAIN.md worked example: 5 000 € of goods -> (5 000 - 2 000) x 0,00688 = 20,64 €
        ([(25, 1)], (0, 0, 0), 500_000, DOMAIN_RATES, 5330, 650 + 2064, 2064, 5980 + 2064),
        # at the threshold, no surcharge; one cent above, 0,00688 cent rounds to nothing
        ([(25, 1)], (0, 0, 0), 200_000, DOMAIN_RATES, 5330, 650, 0, 5980),
        ([(25, 1)], (0, 0, 0), 200_001, DOMAIN_RATES, 5330, 650, 0, 5980),
        # half-up rounding: 31,25 € above the threshold -> 21,5 cents -> 22; 31,24 € -> 21,49 cents -> 21
        ([(25, 1)], (0, 0, 0), 203_125, DOMAIN_RATES, 5330, 672, 22, 6002),
        ([(25, 1)], (0, 0, 0), 203_124, DOMAIN_RATES, 5330, 671, 21, 6001),
        # below the threshold, never a negative surcharge
        ([(25, 1)], (0, 0, 0), 150_000, DOMAIN_RATES, 5330, 650, 0, 5980),
        # the largest accepted value: 1 000 000 € -> 998 000 € x 0,00688 = 6 866,24 €
        ([(25, 1)], (0, 0, 0), 100_000_000, DOMAIN_RATES, 5330, 650 + 686_624, 686_624, 5980 + 686_624),
        # OCCE 26 style rates: 2,25 € per pupil, 8 € per adult, no insurance line
        ([(20, 1), (20, 2)], (1, 0, 0), 0, Rates(225, 800, 0, 200_000, 6880), 40 * 225 + 4 * 800, 0, 0, 9000 + 3200),
    ],
)
def test_fee_table(classes, adults, property_cents, rates, cotisation, assurance, surcharge, total):
    fee = compute_fee(rates, _headcounts(classes, *adults, property_cents=property_cents))
    assert (fee.cotisation_cents, fee.assurance_cents, fee.property_surcharge_cents, fee.total_cents) == (
        cotisation,
        assurance,
        surcharge,
        total,
    )
    assert fee.total_cents == fee.cotisation_cents + fee.insurance_cents + fee.property_surcharge_cents
    assert fee.insured == fee.pupils + fee.adults
    assert all(isinstance(v, int) for v in (fee.cotisation_cents, fee.assurance_cents, fee.total_cents))


@pytest.mark.parametrize("classes", [[], [(0, 1)], [(0, 1), (0, 2)]])
def test_zero_headcounts_are_refused(classes):
    with pytest.raises(DomainError, match="au moins une classe avec ses élèves"):
        compute_fee(DOMAIN_RATES, _headcounts(classes, 3, 1, 0))


def test_negative_counts_are_refused():
    with pytest.raises(DomainError, match="négatifs"):
        compute_fee(DOMAIN_RATES, _headcounts([(10, 1)], atsem=-1))


@pytest.mark.parametrize(
    ("excess", "ppm", "cents"),
    [(100, 5000, 1), (99, 5000, 0), (300_000, 6880, 2064), (0, 6880, 0), (-5, 6880, 0), (1000, 0, 0)],
)
def test_property_surcharge_rounds_half_up(excess, ppm, cents):
    assert property_surcharge(excess, ppm) == cents


@pytest.mark.parametrize(
    ("bank", "setting", "expected"),
    [
        ("La Banque Postale", "La Banque Postale", True),
        ("BANQUE POSTALE", "La Banque Postale", True),
        ("La Banque Postale - CCP Nantes", "La Banque Postale", True),
        ("la banque postale", "Crédit Mutuel\nLa Banque Postale", True),
        ("Crédit Agricole", "La Banque Postale, Crédit agricole", True),
        ("Credit Agricole", "Crédit Agricole", True),
        ("Crédit Mutuel", "La Banque Postale", False),
        ("", "La Banque Postale", False),
        ("La Banque Postale", "", False),
        ("Banque Populaire", "La Banque Postale", False),
    ],
)
def test_banks_without_direct_debit(bank, setting, expected):
    assert bank_takes_no_debit(bank, setting) is expected


# --- Fixtures ----------------------------------------------------------------------------------


def _add_year(session, start, **rates) -> SchoolYear:
    values = {
        "pupil_fee_cents": 205,
        "adult_fee_cents": 205,
        "insurance_fee_cents": 25,
        "property_threshold_cents": 200_000,
        "property_rate_ppm": 6880,
        **rates,
    }
    year = SchoolYear(start_year=start, **values)
    session.add(year)
    session.flush()
    return year


@pytest.fixture
def years(app):
    """Last year and the current school year with the DOMAIN.md §6 rates."""
    with app.app_context():
        _add_year(db.session, LAST)
        _add_year(db.session, CURRENT)
        db.session.commit()
        db.session.remove()


def _paid_membership(session, coop_number: int, start: int, classes=LAST_CLASSES, **declared) -> Membership:
    coop = session.scalar(sa.select(Coop).where(Coop.number == coop_number))
    year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == start))
    headcounts = Headcounts(
        tuple(ClassHeadcount(*row) for row in classes),
        atsem=declared.get("atsem", 1),
        aesh=declared.get("aesh", 0),
        other_adults=declared.get("other_adults", 0),
        property_value_cents=declared.get("property_value_cents", 0),
    )
    membership = save_draft(session, coop, year, headcounts, by=None)
    commit_membership(session, membership, coop.mandates[0], by=None, ip="cli", now=datetime(start, 10, 1, 9, 30))
    record_cheque(session, membership, by=None, now=datetime(start, 10, 20, 14, 0))
    return membership


@pytest.fixture
def last_year_paid(app, years, make_coop):
    """Coop 085-001 with last year's membership as the portal kept it (paid)."""
    coop = make_coop(1)
    with app.app_context():
        _paid_membership(db.session, 1, LAST)
        db.session.commit()
        db.session.remove()
    return coop


def _membership(db_check, number=1, start=CURRENT):
    def load(session):
        row = session.scalar(
            sa.select(Membership)
            .join(Coop)
            .join(SchoolYear)
            .where(Coop.number == number, SchoolYear.start_year == start)
        )
        if row is not None:
            row.classes  # noqa: B018 - load before the session closes
            row.school_year  # noqa: B018
        return row

    return db_check(load)


# --- Domain: prefill, draft, engagement and freezing, transitions --------------------------------


def test_prefill_comes_from_last_years_membership(session, last_year_paid):
    coop = session.get(Coop, last_year_paid.id)
    year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == CURRENT))
    headcounts = prefill(session, coop, year)
    assert [(c.name, c.level, c.pupils, c.teachers) for c in headcounts.classes] == LAST_CLASSES
    assert headcounts.atsem == 1
    assert session.scalar(sa.select(sa.func.count()).select_from(Membership)) == 1  # nothing written


def test_prefill_without_history_is_empty(session, years, make_coop):
    coop = session.get(Coop, make_coop(1).id)
    year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == CURRENT))
    assert prefill(session, coop, year) == Headcounts()


def test_commit_freezes_headcounts_and_fee(session, last_year_paid):
    coop = session.get(Coop, last_year_paid.id)
    year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == CURRENT))
    draft = save_draft(
        session,
        coop,
        year,
        Headcounts((ClassHeadcount("CP", "CP", 25, 1),), atsem=1, property_value_cents=500_000),
        by=None,
    )
    now = datetime(CURRENT, 10, 2, 8, 15)
    membership = commit_membership(session, draft, coop.mandates[0], by=None, ip="203.0.113.7", now=now)
    assert membership.status == "committed"
    assert (membership.mandataire_name, membership.committed_at, membership.committed_ip) == (
        "Claire Moreau",
        now,
        "203.0.113.7",
    )
    # 25 pupils + 2 adults: 27 x 2,05 = 55,35; 27 x 0,25 = 6,75; property surcharge 20,64
    assert (
        membership.cotisation_cents,
        membership.insurance_cents,
        membership.property_surcharge_cents,
        membership.total_cents,
    ) == (5535, 675, 2064, 8274)
    assert (membership.pupils_count, membership.teachers_count, membership.insured_count) == (25, 1, 27)
    assert membership.payment_method == "debit"
    assert re.fullmatch(rf"ADH-{CURRENT}-001-[A-Z2-9]{{6}}", membership.reference)

    # Rates change afterwards: the membership keeps its figures.
    year.pupil_fee_cents, year.insurance_fee_cents, year.property_rate_ppm = 300, 50, 10_000
    session.flush()
    assert membership.total_cents == 8274
    fee = frozen_fee(membership)
    assert (fee.cotisation_cents, fee.assurance_cents, fee.total_cents) == (5535, 2739, 8274)
    assert fee.rates == DOMAIN_RATES
    # ...and its headcounts can no longer change.
    with pytest.raises(DomainError, match="déjà engagée"):
        save_draft(session, coop, year, Headcounts((ClassHeadcount("CP", "CP", 30, 1),)), by=None)
    with pytest.raises(DomainError, match="déjà engagée"):
        commit_membership(session, membership, coop.mandates[0], by=None, ip="", now=now)
    assert [c.pupils for c in membership.classes] == [25]
    event = session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "membership.committed", AuditEvent.entity_id == membership.id)
    )
    assert event.after["total_cents"] == 8274 and event.ip == "203.0.113.7"


def test_commit_needs_a_mandataire_and_valid_headcounts(session, years, make_coop):
    coop = session.get(Coop, make_coop(1).id)
    year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == CURRENT))
    draft = save_draft(session, coop, year, Headcounts((ClassHeadcount("CP", "CP", 25, 1),)), by=None)
    with pytest.raises(DomainError, match="Aucun mandataire"):
        commit_membership(session, draft, None, by=None, ip="", now=DEFAULT_MOMENT)
    assert draft.status == "draft"
    with pytest.raises(ValidationErrors) as refused:
        save_draft(session, coop, year, Headcounts((ClassHeadcount("", "CP", 0, 0),)), by=None)
    assert "classes-0" in refused.value.errors


def test_bank_without_direct_debit_pays_by_cheque(session, years, make_coop):
    first, second = make_coop(1, bank_name="LA BANQUE POSTALE"), make_coop(2, bank_name="La Banque Postale")
    coop = session.get(Coop, first.id)
    year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == CURRENT))
    draft = save_draft(session, coop, year, Headcounts((ClassHeadcount("CP", "CP", 25, 1),)), by=None)
    membership = commit_membership(session, draft, coop.mandates[0], by=None, ip="", now=DEFAULT_MOMENT)
    assert membership.payment_method == "cheque"
    with pytest.raises(DomainError, match="chèque"):
        transition(membership, "in_batch")
    # The setting is the federation's: another list, another outcome.
    session.add(Federation(name="OCCE 85", no_debit_banks="Crédit Mutuel"))
    other = session.get(Coop, second.id)
    draft = save_draft(session, other, year, Headcounts((ClassHeadcount("CP", "CP", 20, 1),)), by=None)
    assert (
        commit_membership(session, draft, other.mandates[0], by=None, ip="", now=DEFAULT_MOMENT).payment_method
        == "debit"
    )


LEGAL = {
    ("draft", "committed"),
    ("committed", "in_batch"),
    ("committed", "paid"),
    ("in_batch", "paid"),
    ("in_batch", "rejected"),
    ("rejected", "in_batch"),
    ("rejected", "paid"),
    ("paid", "returned"),
    ("returned", "in_batch"),
    ("returned", "paid"),
}
STATUSES = ("draft", "committed", "in_batch", "paid", "rejected", "returned")
# Paid directly, without a debit: only by cheque.
CHEQUE_PATHS = {("committed", "paid"), ("rejected", "paid"), ("returned", "paid")}


def test_the_transition_table_is_the_documented_one():
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == LEGAL


@pytest.mark.parametrize(("start", "to"), sorted(LEGAL))
def test_legal_transitions(start, to):
    method = "cheque" if (start, to) in CHEQUE_PATHS else "debit"
    membership = Membership(status=start, payment_method=method)
    transition(membership, to)
    assert membership.status == to


@pytest.mark.parametrize(("start", "to"), sorted({(a, b) for a in STATUSES for b in STATUSES} - LEGAL))
def test_illegal_transitions_raise(start, to):
    membership = Membership(status=start, payment_method="debit")
    with pytest.raises(DomainError, match="ne peut pas passer"):
        transition(membership, to)
    assert membership.status == start


@pytest.mark.parametrize(
    ("start", "to", "method", "message"),
    [
        ("committed", "paid", "debit", "que par chèque"),
        ("committed", "in_batch", "cheque", "par chèque"),
        ("rejected", "in_batch", "cheque", "par chèque"),
        ("rejected", "paid", "debit", "que par chèque"),
        ("returned", "paid", "debit", "que par chèque"),
        ("draft", "archived", "debit", "inconnu"),
    ],
)
def test_transitions_check_the_payment_path(start, to, method, message):
    membership = Membership(status=start, payment_method=method)
    with pytest.raises(DomainError, match=message):
        transition(membership, to)
    assert membership.status == start


def test_debit_path_and_cheque_path(session, years, make_coop):
    coop = session.get(Coop, make_coop(1).id)
    year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == CURRENT))
    membership = save_draft(session, coop, year, Headcounts((ClassHeadcount("CP", "CP", 25, 1),)), by=None)
    commit_membership(session, membership, coop.mandates[0], by=None, ip="", now=DEFAULT_MOMENT)
    with pytest.raises(DomainError):
        record_debit_paid(session, membership, by=None, now=DEFAULT_MOMENT)  # not in a batch yet
    transition(membership, "in_batch")
    transition(membership, "rejected")
    transition(membership, "in_batch")
    with pytest.raises(DomainError, match="chèque ne peut être enregistré"):
        record_cheque(session, membership, by=None, now=DEFAULT_MOMENT)  # while the debit is in a run
    record_debit_paid(session, membership, by=None, now=datetime(CURRENT, 11, 5))
    assert (membership.status, membership.paid_at) == ("paid", datetime(CURRENT, 11, 5))
    with pytest.raises(DomainError):
        transition(membership, "rejected")
    # returned after settlement: unpaid again, then paid by cheque
    record_debit_returned(session, membership, by=None)
    assert (membership.status, membership.paid_at) == ("returned", None)
    record_cheque(session, membership, by=None, now=datetime(CURRENT, 12, 1))
    assert (membership.status, membership.payment_method) == ("paid", "cheque")


# --- The coop-face step --------------------------------------------------------------------------


def _form_data(rows, *, atsem="1", aesh="0", others="0", property_value="0", engagement=None, **extra):
    data = {"atsem": atsem, "aesh": aesh, "other_adults": others, "property_value": property_value, **extra}
    for index, (name, level, pupils, teachers) in enumerate(rows):
        data.update(
            {
                f"classes-{index}-name": name,
                f"classes-{index}-level": level,
                f"classes-{index}-pupils": str(pupils),
                f"classes-{index}-teachers": str(teachers),
            }
        )
    if engagement:
        data["engagement"] = engagement
    return data


def _text(response) -> str:
    return response.get_data(as_text=True)


def test_step_shows_last_years_table_and_fee(client, last_year_paid, login_as):
    login_as(last_year_paid)
    page = _text(client.get("/coop/adhesion"))
    assert f"Adhésion {CURRENT}-{CURRENT + 1}" in page
    assert "tels que le portail les a conservés" in page and f"{LAST}-{CURRENT}" in page
    assert 'value="CP de Mme Roy"' in page and 'value="CE1-CE2"' in page and 'value="22"' in page
    assert '<th scope="col">Élèves</th>' in page
    # 47 pupils + 2 teachers + 1 ATSEM: 50 x 2,05 = 102,50; 50 x 0,25 = 12,50; total 115,00
    assert "115,00\u202f€" in page and "102,50\u202f€" in page
    assert 'data-ppm="6880"' in page
    assert re.search(r'<script nonce="[\w-]+" src="/static/js/membership.js">', page)
    assert "Mettre à jour ces informations" in page and "Engagement du mandataire" in page


def test_step_before_the_year_exists(client, make_coop, login_as, db_check):
    login_as(make_coop(1))
    response = client.get("/coop/adhesion")
    assert response.status_code == 200
    assert "pas encore ouverte" in _text(response)
    assert "Bientôt disponible" in _text(client.get("/"))


def test_save_draft_redirects_with_one_flash(client, last_year_paid, login_as, db_check):
    login_as(last_year_paid)
    rows = [("CP de Mme Roy", "CP", 23, 1), ("CE1-CE2", "CE1-CE2", 25, 1), ("CM1", "CM1", 27, 1)]
    response = client.post("/coop/adhesion", data=_form_data(rows, property_value="2 500,00"))
    assert response.status_code == 302 and response.headers["Location"] == "/coop/adhesion"
    page = _text(client.get("/coop/adhesion"))
    assert page.count('class="alert alert-') == 1 and "Vos informations sont enregistrées" in page
    membership = _membership(db_check)
    assert membership.status == "draft" and membership.property_value_cents == 250_000
    assert [(c.name, c.pupils) for c in membership.classes] == [("CP de Mme Roy", 23), ("CE1-CE2", 25), ("CM1", 27)]
    assert 'value="CM1"' in page  # the draft is shown, not last year's table


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("classes-0-pupils", "abc", "Indiquez un nombre entier."),
        ("classes-0-pupils", "0", "Entre 1 et 999 élèves"),
        ("classes-0-teachers", "0", "Au moins un enseignant"),
        ("classes-0-name", "", "Ce champ est obligatoire."),
        ("atsem", "-1", "Entre 0 et 999"),
        ("property_value", "beaucoup", "n&#39;est pas un montant"),
    ],
)
def test_invalid_input_is_shown_on_its_field(client, last_year_paid, login_as, db_check, field, value, message):
    login_as(last_year_paid)
    response = client.post("/coop/adhesion", data={**_form_data(LAST_CLASSES), field: value})
    page = _text(response)
    assert response.status_code == 200
    assert "rien n'a été enregistré" in page
    assert re.search(rf'id="{field}-erreur"[^>]*>[^<]*{re.escape(message)}', page), page[-2000:]
    assert re.search(rf'aria-describedby="[^"]*{field}-erreur', page)
    assert _membership(db_check) is None


def test_rows_are_added_and_removed_without_javascript(client, last_year_paid, login_as, db_check):
    login_as(last_year_paid)
    added = client.post("/coop/adhesion", data=_form_data(LAST_CLASSES, add_class="1"))
    assert added.status_code == 200
    page = _text(added)
    assert 'name="classes-2-name"' in page and 'data-focus="classes-2-name"' in page
    assert "rien n'a été enregistré" not in page  # the empty new row is not an error yet
    removed = client.post("/coop/adhesion", data=_form_data(LAST_CLASSES, remove_class="0"))
    page = _text(removed)
    assert 'value="CP de Mme Roy"' not in page and 'value="CE1-CE2"' in page
    assert _membership(db_check) is None  # nothing saved by either button


def test_engagement_journey(client, last_year_paid, login_as, db_check):
    login_as(last_year_paid)
    response = client.post("/coop/adhesion", data=_form_data(LAST_CLASSES, engagement="oui"))
    assert response.headers["Location"] == "/coop/adhesion/engagement"
    recap = _text(client.get("/coop/adhesion/engagement"))
    assert "Je m&#39;engage à être mandataire" in recap and "Claire Moreau" in recap
    assert "115,00\u202f€" in recap and "définitive" in recap
    assert _membership(db_check).status == "draft"

    response = client.post("/coop/adhesion/engagement", data={})
    assert response.status_code == 302 and response.headers["Location"] == "/coop/identite"
    identity = _text(client.get("/coop/identite"))
    assert "Votre adhésion" in identity and "vérifiez l&#39;identité de la coop" in identity

    membership = _membership(db_check)
    assert membership.status == "committed" and membership.total_cents == 11500
    assert membership.mandataire_name == "Claire Moreau" and membership.committed_ip == "127.0.0.1"
    mails = db_check(lambda s: s.scalars(sa.select(OutboxEmail)).all())
    assert len(mails) == 1 and mails[0].recipient == "coop1@example.org"
    assert membership.reference in mails[0].subject
    assert "115,00" in mails[0].body_text and "prélèvera" in mails[0].body_text

    # A second click (or the Back button) records nothing twice.
    again = client.post("/coop/adhesion/engagement", data={})
    assert again.headers["Location"] == "/coop/adhesion"
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))) == 1
    summary = _text(client.get("/coop/adhesion"))
    assert "déjà engagée" in summary and membership.reference in summary and "Identité de la coop" in summary
    # ...and the frozen headcounts cannot be posted again.
    client.post("/coop/adhesion", data=_form_data([("Pirate", "CP", 99, 1)]))
    assert [c.name for c in _membership(db_check).classes] == ["CP de Mme Roy", "CE1-CE2"]


def test_answer_no_saves_without_engaging(client, last_year_paid, login_as, db_check):
    login_as(last_year_paid)
    response = client.post("/coop/adhesion", data=_form_data(LAST_CLASSES, engagement="non"))
    assert response.headers["Location"] == "/coop/adhesion"
    assert "Seul·e la ou le mandataire" in _text(client.get("/coop/adhesion"))
    assert _membership(db_check).status == "draft"


def test_engagement_page_without_a_draft(client, years, make_coop, login_as, db_check):
    login_as(make_coop(1))
    assert "Enregistrez d'abord" in _text(client.get("/coop/adhesion/engagement"))
    assert client.post("/coop/adhesion/engagement", data={}).headers["Location"] == "/coop/adhesion"
    assert _membership(db_check) is None


def test_cheque_path_for_la_banque_postale(client, years, make_coop, login_as, db_check):
    login_as(make_coop(4, bank_name="La Banque Postale"))
    assert "ne permet pas le prélèvement" in _text(client.get("/coop/adhesion"))
    client.post("/coop/adhesion", data=_form_data([("PS-MS", "PS-MS", 24, 1)], engagement="oui"))
    assert "envoyez un chèque" in _text(client.get("/coop/adhesion/engagement"))
    client.post("/coop/adhesion/engagement", data={})
    membership = _membership(db_check, 4)
    assert membership.payment_method == "cheque"
    page = _text(client.get("/coop/adhesion"))
    assert "envoyer un chèque de" in page and membership.reference in page
    mail = db_check(lambda s: s.scalar(sa.select(OutboxEmail)))
    assert "envoyez un chèque" in mail.body_text and membership.reference in mail.body_text
    home = _text(client.get("/"))
    assert "À faire : envoyer un chèque" in home


def test_home_card_follows_the_membership(client, last_year_paid, login_as, db_check):
    login_as(last_year_paid)
    home = _text(client.get("/"))
    assert "Vérifiez les effectifs de l&#39;an dernier" in home and "Renouveler l&#39;adhésion" in home
    client.post("/coop/adhesion", data=_form_data(LAST_CLASSES))
    assert "il reste l&#39;engagement du mandataire" in _text(client.get("/"))
    client.post("/coop/adhesion/engagement", data={})
    home = _text(client.get("/"))
    assert "115,00\u202f€ sera prélevé par l&#39;OCCE 85" in home and "En attente de l&#39;OCCE 85" in home


@pytest.mark.parametrize(
    ("status", "method", "badge", "text"),
    [
        ("committed", "debit", "waiting", "sera prélevé"),
        ("in_batch", "debit", "waiting", "en cours de prélèvement"),
        ("rejected", "debit", "todo", "a été rejeté"),
        ("paid", "debit", "done", "Adhésion réglée"),
    ],
)
def test_home_card_statuses(session, last_year_paid, status, method, badge, text):
    coop = session.get(Coop, last_year_paid.id)
    year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == CURRENT))
    membership = Membership(
        coop=coop,
        school_year=year,
        status=status,
        payment_method=method,
        total_cents=11500,
        committed_at=DEFAULT_MOMENT,
    )
    session.add(membership)
    session.flush()
    card = next(step for step in checklist(coop, DEFAULT_MOMENT.date(), year.label) if step.key == "membership")
    assert card.status == badge and text in card.summary and card.endpoint == "membership.step"


def test_staff_and_anonymous_cannot_use_the_coop_step(app, years, make_staff, login_as):
    staff = login_as(make_staff(), on=app.test_client())
    assert staff.get("/coop/adhesion").status_code == 403
    assert staff.post("/coop/adhesion", data={}).status_code == 403
    anonymous = app.test_client().get("/coop/adhesion")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/connexion")


def test_form_fields_are_the_only_ones_assigned(client, last_year_paid, login_as, db_check):
    login_as(last_year_paid)
    client.post(
        "/coop/adhesion",
        data={**_form_data(LAST_CLASSES), "status": "paid", "total_cents": "1", "coop_id": "99", "reference": "FAUX"},
    )
    membership = _membership(db_check)
    assert (membership.status, membership.total_cents, membership.reference) == ("draft", None, None)
    assert membership.coop_id == last_year_paid.id


# --- Back office, payment mail, documents ----------------------------------------------------------


def _engage(client, login_as, coop, rows=LAST_CLASSES, **form):
    login_as(coop)
    client.post("/coop/adhesion", data=_form_data(rows, engagement="oui", **form))
    client.post("/coop/adhesion/engagement", data={})


def test_staff_see_the_committed_membership_and_record_the_cheque(
    app, client, last_year_paid, make_staff, login_as, db_check
):
    _engage(client, login_as, last_year_paid, property_value="5 000")
    membership = _membership(db_check)
    # 47 pupils + 3 adults = 50 insured: 102,50 + 12,50 + 20,64 = 135,64
    assert membership.total_cents == 13564
    staff = login_as(make_staff(), on=app.test_client())
    listing = _text(staff.get(f"/admin/admin_memberships/?flt0_0=committed&search={membership.reference}"))
    assert membership.reference in listing and "135,64" in listing and "Engagée" in listing
    details = _text(staff.get(f"/admin/admin_memberships/details/?id={membership.id}"))
    assert "Supplément biens" in details and "20,64" in details and "CP de Mme Roy" in details
    assert "Claire Moreau" in details

    response = staff.post(
        "/admin/admin_memberships/action/", data={"action": "cheque_received", "rowid": [str(membership.id)]}
    )
    assert response.status_code == 302
    paid = _membership(db_check)
    assert paid.status == "paid" and paid.payment_method == "cheque" and paid.paid_at is not None
    mails = db_check(lambda s: s.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id)).all())
    assert len(mails) == 2 and "paiement reçu" in mails[1].subject and "attestation" in mails[1].body_text
    # Twice: refused with a message, no second mail.
    staff.post("/admin/admin_memberships/action/", data={"action": "cheque_received", "rowid": [str(paid.id)]})
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))) == 2
    assert "ne peut être enregistré" in _text(staff.get("/admin/admin_memberships/"))


def test_documents_after_payment(app, client, last_year_paid, make_staff, login_as, db_check):
    _engage(client, login_as, last_year_paid, property_value="5 000")
    membership = _membership(db_check)
    page = _text(client.get("/coop/adhesion"))
    assert "attestation.pdf" not in page.split("Adhésions des années précédentes")[0]
    assert client.get(f"/coop/adhesion/{membership.id}/attestation.pdf").status_code == 404  # not paid yet
    staff = login_as(make_staff(), on=app.test_client())
    staff.post("/admin/admin_memberships/action/", data={"action": "cheque_received", "rowid": [str(membership.id)]})

    page = _text(client.get("/coop/adhesion"))
    assert "Attestation d'adhésion" in page and "Certificat d'assurance" in page
    label = f"{CURRENT}-{CURRENT + 1}"
    attestation = pdf_download_text(client.get(f"/coop/adhesion/{membership.id}/attestation.pdf"))
    for expected in (
        "Attestation d’adhésion" if "’" in attestation else "Attestation d'adhésion",
        label,
        "Coopérative de test 001",
        "085-001",
        "CP de Mme Roy",
        "CE1-CE2",
        "102,50",
        "33,14",
        "135,64",
        membership.reference,
        "Claire Moreau",
        "chèque",
    ):
        assert expected in attestation, expected
    assert DEFAULT_MOMENT.strftime("%d/%m/%Y") in attestation  # issue date
    certificate = pdf_download_text(client.get(f"/coop/adhesion/{membership.id}/certificat-assurance.pdf"))
    for expected in (
        "Certificat d",
        "assurance",
        label,
        "Membres assurés 50",
        "5 000,00",
        "20,64",
        "12,50",
        "33,14",
        membership.reference,
    ):
        assert expected in certificate, expected


def test_pdf_escapes_user_text(app, client, years, make_coop, make_staff, login_as, db_check):
    coop = make_coop(3, name="<b>Coop</b> & <img src='/etc/hostname'>")
    _engage(client, login_as, coop, rows=[("<i>CP</i>", "CP", 20, 1)])
    membership = _membership(db_check, 3)
    staff = login_as(make_staff(), on=app.test_client())
    staff.post("/admin/admin_memberships/action/", data={"action": "cheque_received", "rowid": [str(membership.id)]})
    text = pdf_download_text(client.get(f"/coop/adhesion/{membership.id}/attestation.pdf"))
    assert "<b>Coop</b> & <img src='/etc/hostname'>" in text and "<i>CP</i>" in text


def test_another_coops_documents_are_404_and_audited(app, client, last_year_paid, make_coop, login_as, db_check):
    last = _membership(db_check, 1, LAST)
    owner = login_as(last_year_paid, on=app.test_client())
    assert owner.get(f"/coop/adhesion/{last.id}/attestation.pdf").status_code == 200
    other = login_as(make_coop(2), on=app.test_client())
    for path in (f"/coop/adhesion/{last.id}/attestation.pdf", f"/coop/adhesion/{last.id}/certificat-assurance.pdf"):
        response = other.get(path)
        assert response.status_code == 404 and b"Coop\xc3\xa9rative de test 001" not in response.data
    assert other.get("/coop/adhesion/999999/attestation.pdf").status_code == 404
    denied = db_check(lambda s: s.scalars(sa.select(AuditEvent).where(AuditEvent.action == "access.denied")).all())
    assert len(denied) == 2 and {d.actor_login for d in denied} == {"085-002"}


def test_past_years_documents_are_listed(client, last_year_paid, login_as, db_check):
    login_as(last_year_paid)
    client.post("/coop/adhesion", data=_form_data(LAST_CLASSES, engagement="oui"))
    client.post("/coop/adhesion/engagement", data={})
    last = _membership(db_check, 1, LAST)
    page = _text(client.get("/coop/adhesion"))
    assert f"/coop/adhesion/{last.id}/attestation.pdf" in page and f"{LAST}-{CURRENT}" in page


def test_membership_classes_are_deleted_with_the_membership(session, last_year_paid):
    membership = session.scalar(sa.select(Membership))
    session.delete(membership)
    session.flush()
    assert session.scalar(sa.select(sa.func.count()).select_from(MembershipClass)) == 0


def test_federation_setting_lists_the_banks_without_direct_debit(app, make_staff, login_as, db_check):
    with app.app_context():
        db.session.add(Federation(name="OCCE 85"))
        db.session.commit()
        federation_id = db.session.scalar(sa.select(Federation.id))
        db.session.remove()
    staff = login_as(make_staff(role="admin"), on=app.test_client())  # settings: administrators only
    page = _text(staff.get(f"/admin/admin_federation/edit/?id={federation_id}"))
    assert "Banques sans prélèvement" in page and "La Banque Postale</textarea>" in page
    response = staff.post(
        f"/admin/admin_federation/edit/?id={federation_id}",
        data={"name": "OCCE 85", "no_debit_banks": "La Banque Postale\nBanque Populaire"},
    )
    assert response.status_code == 302
    assert db_check(lambda s: s.scalar(sa.select(Federation.no_debit_banks))) == "La Banque Postale\nBanque Populaire"
