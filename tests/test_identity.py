"""The identity step: PRG with a flash, French errors on the right field, audit with before/after."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, Coop

VALID = {
    "name": "Coopérative de l'école des Dunes",
    "school_name": "École publique des Dunes",
    "uai": "0850001P",
    "address": "3 rue des Dunes",
    "postal_code": "85160",
    "city": "Saint-Jean-de-Monts",
    "email": "ce.0850001p@ac-nantes.fr",
    "phone": "0251000000",
    "director_name": "Mme Roy",
    "bank_name": "Crédit Mutuel",
    "iban": "FR76 1551 9000 0100 0200 0000 103",
    "bic": "cmcifr2a",
}


def _coop(db_check, number=1):
    return db_check(lambda s: s.scalar(sa.select(Coop).where(Coop.number == number)))


def _form(client):
    page = client.get("/coop/identite").get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    return {**VALID, "version": version}


def test_identity_page_shows_fields_and_current_mandataire(client, make_coop, login_as):
    login_as(make_coop(1))
    page = client.get("/coop/identite").get_data(as_text=True)
    assert "Identité de la coop 085-001" in page
    assert "Claire Moreau" in page and "mandataire depuis le 01/09/2021" in page
    assert "Valider les modifications" in page


def test_valid_update_saves_normalised_values_and_audits(client, make_coop, login_as, db_check):
    login_as(make_coop(1))
    response = client.post("/coop/identite", data=_form(client))
    assert response.status_code == 302 and response.headers["Location"] == "/coop/identite"
    page = client.get("/coop/identite").get_data(as_text=True)
    assert "Les modifications ont été enregistrées" in page
    coop = _coop(db_check)
    assert coop.city == "Saint-Jean-de-Monts" and coop.postal_code == "85160"
    assert coop.phone == "02 51 00 00 00" and coop.bic == "CMCIFR2A" and coop.iban == "FR7615519000010002000000103"
    event = db_check(lambda s: s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "coop.identity_updated")))
    assert event.before["city"] == "La Roche-sur-Yon" and event.after["city"] == "Saint-Jean-de-Monts"
    assert event.actor_login == "085-001" and event.coop_id == coop.id
    assert "iban" not in event.after  # unchanged fields are not logged


def test_iban_is_masked_in_the_audit_log(client, make_coop, login_as, db_check):
    from schwifty import IBAN

    login_as(make_coop(1))
    new_iban = IBAN.generate("FR", bank_code="2004100001", account_code="00000000012").compact
    client.post("/coop/identite", data={**_form(client), "iban": new_iban})
    event = db_check(lambda s: s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "coop.identity_updated")))
    assert event.after["iban"] == f"FR76 **** {new_iban[-4:]}"
    assert new_iban not in str(event.after) and "FR7615519000010002000000103" not in str(event.before)
    assert _coop(db_check).iban == new_iban


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("uai", "0850001A", "lettre de contrôle"),
        ("uai", "85001P", "7 chiffres"),
        ("postal_code", "44000", "Vendée"),
        ("iban", "FR7615519000010002000000104", "IBAN n&#39;est pas valide"),
        ("bic", "XYZ", "BIC n&#39;est pas valide"),
        ("email", "pas-une-adresse", "adresse e-mail"),
        ("name", "", "Ce champ est obligatoire."),
    ],
)
def test_invalid_input_is_refused_on_its_field(client, make_coop, login_as, db_check, field, value, message):
    login_as(make_coop(1))
    before = _coop(db_check)
    response = client.post("/coop/identite", data={**_form(client), field: value})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "rien n'a été enregistré" in page
    assert re.search(rf'id="{field}-erreur"[^>]*>[^<]*{message}', page), page[-3000:]
    after = _coop(db_check)
    assert (after.city, after.uai, after.iban, after.version) == (before.city, before.uai, before.iban, before.version)
    assert (
        db_check(
            lambda s: s.scalar(
                sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "coop.identity_updated")
            )
        )
        == 0
    )


def test_stale_form_does_not_overwrite_a_newer_save(app, make_coop, login_as, db_check):
    coop = make_coop(1)
    first = login_as(coop, on=app.test_client())
    second = login_as(coop, on=app.test_client())
    stale = _form(second)
    assert first.post("/coop/identite", data={**_form(first), "city": "Challans"}).status_code == 302
    response = second.post("/coop/identite", data={**stale, "city": "Luçon"})
    assert response.status_code == 302
    assert "modifiées entre-temps" in second.get("/coop/identite").get_data(as_text=True)
    assert _coop(db_check).city == "Challans"


def test_unchanged_form_says_so(client, make_coop, login_as):
    login_as(make_coop(1))
    client.post("/coop/identite", data=_form(client))
    client.get("/coop/identite")
    response = client.post("/coop/identite", data=_form(client))
    assert response.status_code == 302
    assert "Aucune modification" in client.get("/coop/identite").get_data(as_text=True)


def test_history_lists_the_change(client, make_coop, login_as):
    login_as(make_coop(1))
    client.post("/coop/identite", data=_form(client))
    page = client.get("/coop/modifications").get_data(as_text=True)
    assert "Identité modifiée" in page
    event_link = re.search(r'href="(/coop/modifications/\d+)"', page).group(1)
    detail = client.get(event_link).get_data(as_text=True)
    assert "Saint-Jean-de-Monts" in detail and "La Roche-sur-Yon" in detail and "Commune" in detail


def test_home_checklist(client, make_coop, login_as):
    login_as(make_coop(1, uai="", iban=""))
    page = client.get("/").get_data(as_text=True)
    assert "2 informations à compléter : numéro UAI, IBAN." in page
    assert "Mandataire actuel : Claire Moreau" in page
    assert page.count("Bientôt disponible") == 1  # membership: no rates yet for the current year
    assert "Aucune opération pour cette année" in page


def test_staff_edit_shows_in_the_coops_history(app, make_coop, make_staff, login_as, db_check):
    import re as _re

    coop = make_coop(1)
    staff = login_as(make_staff(), on=app.test_client())
    page = staff.get(f"/admin/admin_coops/edit/?id={coop.id}").get_data(as_text=True)
    version = _re.search(r'name="version"', page)
    data = {
        "number": "1",
        "name": "Coopérative de test 001",
        "school_name": "École de test 1",
        "uai": "0850001P",
        "address": "1 rue de l'École",
        "postal_code": "85000",
        "city": "Luçon",
        "email": "coop1@example.org",
        "phone": "02 51 00 00 00",
        "director_name": "Mme Test",
        "bank_name": "Crédit Mutuel",
        "iban": "FR7615519000010002000000103",
        "bic": "CMCIFR2A",
        "is_active": "y",
    }
    assert version is None  # the optimistic-lock column is not a form field
    response = staff.post(f"/admin/admin_coops/edit/?id={coop.id}", data=data)
    assert response.status_code == 302
    event = db_check(lambda s: s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "coop.updated_by_staff")))
    assert event.before == {"city": "La Roche-sur-Yon"} and event.after == {"city": "Luçon"}
    from app.models import Mandate

    assert db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(Mandate))) == 1  # mandate kept
    client = login_as(coop, on=app.test_client())
    assert "Fiche modifiée par l&#39;OCCE 85" in client.get("/coop/modifications").get_data(as_text=True)
