"""`flask demo`: idempotent, valid demo data (federation, two school years, twelve coops, one staff
login); refused in production without --force; demo logins work and coops must change their password.
"""

from __future__ import annotations

import html
import re

import sqlalchemy as sa
from schwifty import IBAN

from app import auth, clock
from app.clock import today as paris_today
from app.coops import check_email
from app.identity import check_bic, check_iban, check_phone, check_postal_code, check_uai
from app.models import Coop, Federation, SchoolYear, User

LOGINS = [f"085-{n:03d}" for n in range(1, 13)]


def ics_is_valid(ics: str) -> bool:
    """SEPA creditor identifier: ISO 7064 mod 97-10 over national id + country + check digits;
    the three-character business code (positions 5-7) is left out of the computation."""
    rearranged = ics[7:] + ics[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return ics[2:4].isdigit() and int(digits) % 97 == 1


def snapshot(db_check) -> dict:
    def take(s):
        return {
            "coops": sorted(s.scalars(sa.select(Coop.number))),
            "users": sorted((u.login, u.role, u.password_hash) for u in s.scalars(sa.select(User))),
            "federations": s.scalar(sa.select(sa.func.count()).select_from(Federation)),
            "years": sorted(s.scalars(sa.select(SchoolYear.start_year))),
        }

    return db_check(take)


def test_ics_check_is_not_trivially_true():
    assert ics_is_valid("FR72ZZZ123456")  # the example creditor id of the French banks' documentation
    assert not ics_is_valid("FR73ZZZ123456")
    assert not ics_is_valid("FR72ZZZ123457")


def test_demo_creates_coops_staff_federation_and_school_years(app, db_check):
    result = app.test_cli_runner().invoke(args=["demo"])

    assert result.exit_code == 0, result.output
    assert "Données de démonstration prêtes. Identifiants :" in result.output
    assert "secretariat" in result.output and "demo-secretariat-85" in result.output
    for login in LOGINS:
        assert f"{login}" in result.output and f"demo-{login}" in result.output

    data = snapshot(db_check)
    assert data["coops"] == list(range(1, 13))
    assert [login for login, role, _ in data["users"] if role == "coop"] == LOGINS
    assert [login for login, role, _ in data["users"] if role != "coop"] == ["secretariat"]
    assert [role for login, role, _ in data["users"] if login == "secretariat"] == ["admin"]  # manages staff logins
    assert data["federations"] == 1

    from app.models import school_year_start

    # 2024-2025 up to the current school year (2026-2027 on 27/11/2026)
    assert data["years"] == list(range(2024, school_year_start(paris_today()) + 1))

    federation = db_check(lambda s: s.scalar(sa.select(Federation)))
    assert ics_is_valid(federation.creditor_id), federation.creditor_id
    assert federation.creditor_id.startswith("FR")
    assert IBAN(federation.iban, validate_bban=True).country_code == "FR"
    assert check_bic(federation.bic) == federation.bic


def test_demo_coops_hold_values_their_own_forms_accept(app, db_check):
    app.test_cli_runner().invoke(args=["demo"])
    coops = db_check(
        lambda s: [
            (c.number, c.uai, c.postal_code, c.email, c.phone, c.iban, c.bic, [m.email for m in c.mandates])
            for c in s.scalars(sa.select(Coop).order_by(Coop.number))
        ]
    )

    assert len(coops) == 12
    for number, uai, postal_code, email, phone, iban, bic, mandate_emails in coops:
        if number != 12:  # 085-012 is left without UAI on purpose (an incomplete identity to fill in)
            assert check_uai(uai) == uai
        assert check_postal_code(postal_code) == postal_code
        assert check_email(email) == email
        assert check_phone(phone) == phone
        assert check_iban(iban) == iban
        assert IBAN(iban, validate_bban=True)  # the French RIB key too
        assert check_bic(bic) == bic
        assert mandate_emails, number
        for address in mandate_emails:
            assert check_email(address) == address
            assert address.isascii(), address  # deliverable by any SMTP server (no SMTPUTF8 needed)


def test_demo_twice_creates_nothing_new_and_keeps_passwords(app, db_check):
    first = app.test_cli_runner().invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    before = snapshot(db_check)

    second = app.test_cli_runner().invoke(args=["demo"])

    assert second.exit_code == 0, second.output
    assert snapshot(db_check) == before
    assert second.output.count("(déjà créé : mot de passe inchangé)") == 13
    assert "demo-085-001" not in second.output
    assert "demo-secretariat-85" not in second.output


def test_demo_is_refused_in_production_without_force(make_app, app, db_check):
    production = make_app(COOP85_ENV="production", SECRET_KEY="5b1e8d27c4a9f063" * 4)

    refused = production.test_cli_runner().invoke(args=["demo"])

    assert refused.exit_code == 1
    assert "Les données de démonstration ne se chargent pas en production (--force)." in refused.output
    assert snapshot(db_check)["coops"] == []

    forced = production.test_cli_runner().invoke(args=["demo", "--force"])
    assert forced.exit_code == 0, forced.output
    assert snapshot(db_check)["coops"] == list(range(1, 13))


def test_demo_coop_logs_in_and_must_choose_its_password(app, client):
    app.test_cli_runner().invoke(args=["demo"])

    response = client.post("/connexion", data={"login": "085-001", "password": "demo-085-001"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/mot-de-passe"
    page = html.unescape(client.get("/mot-de-passe").get_data(as_text=True))
    assert "Bienvenue ! Choisissez maintenant votre mot de passe personnel." in page
    assert client.get("/").headers["Location"] == "/mot-de-passe"

    refused = client.post(
        "/mot-de-passe",
        data={
            "current_password": "demo-085-001",
            "new_password": "la classe de mer à Noirmoutier",
            "confirm": "la classe de mer à Noirmoutier",
        },
    )
    assert refused.status_code == 302
    assert client.get("/").status_code == 200  # now in


def test_demo_staff_logs_in_to_the_back_office(app, client):
    app.test_cli_runner().invoke(args=["demo"])

    response = client.post("/connexion", data={"login": "secretariat", "password": "demo-secretariat-85"})

    # first staff login: the authenticator app is enrolled before any back-office page opens
    assert response.headers["Location"] == "/connexion/code/activation"
    assert client.get("/admin/").headers["Location"].startswith("/connexion")
    page = client.get("/connexion/code/activation").get_data(as_text=True)
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    client.post("/connexion/code/activation", data={"code": auth.totp_code(secret, clock.now())})
    assert client.get("/admin/").status_code == 200
