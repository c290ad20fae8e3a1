"""Idempotent demo data: federation settings, three school years with the DOMAIN.md §6 rates, twelve
Vendée coops with last year's membership (engaged and paid), one staff login.

Everything is fictitious (IBANs and the creditor identifier have valid checksums but belong to
nobody). Passwords are fixed so that the README can show them; coops must change theirs at first
login. Running it again creates only what is missing and never resets a password.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from schwifty import IBAN
from sqlalchemy.orm import Session

from app.identity import uai_check_letter
from app.mandates import current_mandate
from app.membership import (
    ClassHeadcount,
    Headcounts,
    commit_membership,
    membership_of,
    record_cheque,
    record_debit_paid,
    save_draft,
    transition,
)
from app.models import Coop, Federation, Mandate, SchoolYear, User, school_year_start
from app.passwords import hash_password

DEMO_MAIL_DOMAIN = "demo.occe85.example.org"  # example.org is reserved (RFC 2606): nothing is delivered there
STAFF_LOGIN = "secretariat"
STAFF_PASSWORD = "demo-secretariat-85"  # noqa: S105 - demo only, `flask demo` refuses production

BANKS = {
    "Crédit Mutuel": ("1551900001", "CMCIFR2A"),
    "Caisse d'Épargne": ("1444500001", "CEPAFRPP444"),
    "La Banque Postale": ("2004100001", "PSSTFRPPNTE"),
    "Crédit Agricole": ("1470600001", "AGRIFRPP847"),
}

# number, school, address, postal code, commune, bank, mandataire (civility, first, last), director
COOPS = [
    (
        1,
        "École publique Jules Ferry",
        "12 rue Jules Ferry",
        "85000",
        "La Roche-sur-Yon",
        "Crédit Mutuel",
        ("Mme", "Claire", "Moreau"),
        "Mme Hélène Giraud",
    ),
    (
        2,
        "École Pierre Mendès France",
        "3 avenue de la Plage",
        "85100",
        "Les Sables-d'Olonne",
        "Caisse d'Épargne",
        ("M.", "Julien", "Girard"),
        "M. Pascal Roy",
    ),
    (
        3,
        "École publique Les Tilleuls",
        "8 rue des Tilleuls",
        "85300",
        "Challans",
        "Crédit Agricole",
        ("Mme", "Sophie", "Bonnet"),
        "Mme Anne Lefèvre",
    ),
    (
        4,
        "École maternelle Jean Moulin",
        "1 place Jean Moulin",
        "85200",
        "Fontenay-le-Comte",
        "La Banque Postale",
        ("Mme", "Aurélie", "Fournier"),
        "Mme Aurélie Fournier",
    ),
    (
        5,
        "École élémentaire Victor Hugo",
        "25 rue Victor Hugo",
        "85400",
        "Luçon",
        "Crédit Mutuel",
        ("M.", "Thomas", "Mercier"),
        "M. Olivier Blanchard",
    ),
    (
        6,
        "École publique Le Petit Prince",
        "4 rue de Saint-Exupéry",
        "85500",
        "Les Herbiers",
        "Crédit Mutuel",
        ("Mme", "Émilie", "Guérin"),
        "Mme Nathalie Perrin",
    ),
    (
        7,
        "École publique de la Mer",
        "17 quai du Port",
        "85800",
        "Saint-Gilles-Croix-de-Vie",
        "Caisse d'Épargne",
        ("M.", "Nicolas", "Chevalier"),
        "M. Nicolas Chevalier",
    ),
    (
        8,
        "École Marie Curie",
        "6 rue Marie Curie",
        "85600",
        "Montaigu-Vendée",
        "Crédit Agricole",
        ("Mme", "Camille", "Rousseau"),
        "Mme Sandrine Marchand",
    ),
    (
        9,
        "École publique Les Marais",
        "30 route de Challans",
        "85160",
        "Saint-Jean-de-Monts",
        "Crédit Mutuel",
        ("Mme", "Laura", "Renaud"),
        "M. Éric Dupuis",
    ),
    (
        10,
        "École publique Robert Doisneau",
        "2 rue des Écoles",
        "85700",
        "Pouzauges",
        "Caisse d'Épargne",
        ("M.", "Antoine", "Brunet"),
        "Mme Isabelle Caron",
    ),
    (
        11,
        "École publique Les Ormeaux",
        "9 rue du Bois de la Chaize",
        "85330",
        "Noirmoutier-en-l'Île",
        "Crédit Mutuel",
        ("Mme", "Marion", "Lemoine"),
        "Mme Marion Lemoine",
    ),
    (
        12,
        "École publique de l'Île",
        "5 rue du Marché",
        "85350",
        "L'Île-d'Yeu",
        "La Banque Postale",
        ("M.", "Yann", "Le Gall"),
        "",
    ),
]

# Demo school years: from 2024-2025 to the current one, with the DOMAIN.md §6 figures:
# pupil and adult cotisation, insurance (cents), property threshold (cents), coefficient (ppm).
DEMO_RATES = (205, 205, 25, 200000, 6880)
FIRST_DEMO_YEAR = 2024


def demo_years(today: date) -> list[tuple]:
    """(start year, rates…, membership deadline, reports deadline) up to the school year of `today`."""
    return [
        (start, *DEMO_RATES, date(start, 10, 15), date(start + 1, 10, 31))
        for start in range(FIRST_DEMO_YEAR, max(school_year_start(today), FIRST_DEMO_YEAR + 1) + 1)
    ]


def demo_password(number: int) -> str:
    return f"demo-085-{number:03d}"


def creditor_identifier(country: str, national_id: str, business_code: str = "ZZZ") -> str:
    """A SEPA creditor identifier (ICS) with its ISO 7064 mod 97-10 check digits."""
    digits = "".join(str(int(ch, 36)) for ch in f"{national_id}{country}00")
    return f"{country}{98 - int(digits) % 97:02d}{business_code}{national_id}"


def _academic_email(first: str, last: str) -> str:
    """prenom.nom@… without accents or spaces (Aurélie Fournier -> aurelie.fournier@…), on a reserved
    example domain: demo data must never reach a real teacher or school if SMTP is configured."""

    def plain(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", text.lower())
        return "".join(ch for ch in decomposed if (ch.isascii() and ch.isalnum()) or ch == "-")

    return f"{plain(first)}.{plain(last)}@{DEMO_MAIL_DOMAIN}"


@dataclass
class DemoLogin:
    login: str
    password: str | None  # None when the account already existed (its password is left alone)
    role: str


def load_demo(session: Session, *, today: date, hash_params: dict | None = None) -> list[DemoLogin]:
    """Create whatever demo data is missing; return the demo logins (flushes, never commits)."""
    if session.scalar(sa.select(Federation)) is None:
        session.add(
            Federation(
                name="OCCE 85 — Office central de la coopération à l'école de la Vendée",
                address="71 boulevard Aristide Briand",
                postal_code="85000",
                city="La Roche-sur-Yon",
                creditor_id=creditor_identifier("FR", "123456"),
                iban=IBAN.generate("FR", bank_code="1551900001", account_code="00085000085").compact,
                bic="CMCIFR2A",
                sender_email=f"secretariat@{DEMO_MAIL_DOMAIN}",
                phone="02 51 00 00 85",
            )
        )

    existing_years = set(session.scalars(sa.select(SchoolYear.start_year)))
    for start, pupil, adult, insurance, threshold, ppm, membership_deadline, reports_deadline in demo_years(today):
        if start not in existing_years:
            session.add(
                SchoolYear(
                    start_year=start,
                    pupil_fee_cents=pupil,
                    adult_fee_cents=adult,
                    insurance_fee_cents=insurance,
                    property_threshold_cents=threshold,
                    property_rate_ppm=ppm,
                    membership_deadline=membership_deadline,
                    reports_deadline=reports_deadline,
                )
            )

    logins: list[DemoLogin] = []
    existing = {coop.number: coop for coop in session.scalars(sa.select(Coop))}
    for number, school, address, postal, city, bank, (civ, first, last), director in COOPS:
        login = f"085-{number:03d}"
        if number in existing:
            logins.append(DemoLogin(login, None, "coop"))
            continue
        bank_code, bic = BANKS[bank]
        digits = f"085{number:04d}"
        coop = Coop(
            number=number,
            name=f"Coopérative scolaire — {school}",
            school_name=school,
            uai="" if number == 12 else digits + uai_check_letter(digits),  # 012 left incomplete on purpose
            address=address,
            postal_code=postal,
            city=city,
            email=f"ce.{digits}{uai_check_letter(digits).lower()}@{DEMO_MAIL_DOMAIN}",
            phone=f"02 51 {number:02d} 10 20",
            director_name=director,
            bank_name=bank,
            iban=IBAN.generate("FR", bank_code=bank_code, account_code=f"{number:011d}").compact,
            bic=bic,
            debit_mandate_ref=f"OCCE85-{number:03d}-2019",
            debit_mandate_signed_on=date(2019, 9, 2),
        )
        coop.mandates.append(
            Mandate(
                role="mandataire",
                civility=civ,
                first_name=first,
                last_name=last,
                email=_academic_email(first, last),
                started_on=date(2021, 9, 1),
            )
        )
        session.add(coop)
        session.add(
            User(
                login=login,
                role="coop",
                coop=coop,
                must_change_password=True,
                password_hash=hash_password(demo_password(number), hash_params),
            )
        )
        logins.append(DemoLogin(login, demo_password(number), "coop"))

    if session.scalar(sa.select(User).where(User.login == STAFF_LOGIN)) is None:
        session.add(
            User(
                login=STAFF_LOGIN,
                role="admin",
                full_name="Secrétariat OCCE 85",
                email=f"secretariat@{DEMO_MAIL_DOMAIN}",
                must_change_password=False,
                password_hash=hash_password(STAFF_PASSWORD, hash_params),
            )
        )
        logins.append(DemoLogin(STAFF_LOGIN, STAFF_PASSWORD, "staff"))
    else:
        logins.append(DemoLogin(STAFF_LOGIN, None, "staff"))
    session.flush()
    load_demo_memberships(session, today)
    return logins


# Last year's classes of the demo coops: (name, level, pupils, teachers). The number of the coop
# shifts the pupils a little so that the coops do not all look alike.
DEMO_CLASSES = {
    "maternelle": [("Petite section", "PS", 24, 1), ("Moyenne section", "MS", 26, 1), ("Grande section", "GS", 27, 1)],
    "elementaire": [("CP", "CP", 22, 1), ("CE1-CE2", "CE1-CE2", 24, 1), ("CM1-CM2", "CM1-CM2", 26, 2)],
    "primaire": [
        ("PS-MS", "PS-MS", 25, 1),
        ("GS-CP", "GS-CP", 23, 1),
        ("CE1-CE2", "CE1-CE2", 24, 1),
        ("CM1-CM2", "CM1-CM2", 27, 1),
    ],
}


def load_demo_memberships(session: Session, today: date) -> None:
    """Give every demo coop last year's membership, engaged and paid, so that the current year's
    membership step starts prefilled. Idempotent; nothing happens without last year's rates."""
    start = school_year_start(today) - 1
    year = session.scalar(sa.select(SchoolYear).where(SchoolYear.start_year == start))
    if year is None:
        return
    numbers = [row[0] for row in COOPS]
    for coop in session.scalars(sa.select(Coop).where(Coop.number.in_(numbers)).order_by(Coop.number)):
        if membership_of(session, coop, year) is not None:
            continue
        kind = (
            "maternelle"
            if "maternelle" in coop.school_name.lower()
            else "elementaire"
            if coop.number % 2
            else "primaire"
        )
        classes = tuple(
            ClassHeadcount(name, level, pupils + coop.number % 4, teachers)
            for name, level, pupils, teachers in DEMO_CLASSES[kind]
        )
        headcounts = Headcounts(
            classes,
            atsem=3 if kind == "maternelle" else (1 if kind == "primaire" else 0),
            aesh=1 if coop.number % 3 == 0 else 0,
            other_adults=1 if coop.number % 5 == 0 else 0,
            property_value_cents=350_000 if coop.number % 5 == 1 else 120_000,
        )
        membership = save_draft(session, coop, year, headcounts, by=None, ip="demo")
        committed = date(start, 10, 1 + coop.number)
        commit_membership(
            session,
            membership,
            current_mandate(coop, committed),
            by=None,
            ip="demo",
            now=datetime(start, 10, 1 + coop.number, 18, 30),
        )
        paid_at = datetime(start, 10, 20, 9, 0)
        if membership.payment_method == "cheque":
            record_cheque(session, membership, by=None, ip="demo", now=paid_at)
        else:
            transition(membership, "in_batch")
            record_debit_paid(session, membership, by=None, ip="demo", now=paid_at)
    session.flush()
