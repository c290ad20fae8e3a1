"""Import of OCCE 85's coop list: `flask coops import FILE --out OUT` and the back-office upload.

All or nothing, errors by line in French, UTF-8 (with BOM) or Windows-1252; new coops get a
085-NNN login and a temporary password listed in a mail-merge CSV that guards formula injection.
"""

from __future__ import annotations

import csv
import html
import io
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from schwifty import IBAN

from app.identity import uai_check_letter
from app.models import AuditEvent, Coop, User

HEADER = "numero;nom;ecole;uai;adresse;code_postal;commune;email;telephone;banque;iban;bic"


def uai(number: int) -> str:
    digits = f"085{number:04d}"
    return digits + uai_check_letter(digits)


def iban(number: int) -> str:
    return IBAN.generate("FR", bank_code="1551900001", account_code=f"{number:011d}").compact


def bad_iban(number: int) -> str:
    """A well-formed French IBAN whose check digits are wrong (one typo on the last character)."""
    good = iban(number)
    return good[:-1] + ("0" if good[-1] != "0" else "1")


def bad_uai(number: int) -> str:
    """Seven digits with the wrong check letter."""
    good = uai(number)
    return good[:7] + ("A" if good[7] != "A" else "B")


def line(number: int, **changes: str) -> list[str]:
    cells = {
        "numero": f"{number:03d}",
        "nom": f"Coopérative scolaire de l'école n° {number}",
        "ecole": f"École publique Émile Zola {number}",
        "uai": uai(number),
        "adresse": "3 rue de l'Église",
        "code_postal": "85000",
        "commune": "La Roche-sur-Yon",
        "email": f"ce.{uai(number).lower()}@ac-nantes.fr",
        "telephone": "02 51 00 00 00",
        "banque": "Crédit Mutuel",
        "iban": iban(number),
        "bic": "CMCIFR2A",
    }
    cells.update(changes)
    return [cells[column] for column in HEADER.split(";")]


def csv_file(*lines: list[str], encoding: str = "utf-8-sig") -> bytes:
    """The coop list as OCCE 85's spreadsheet saves it: `;`, CRLF, quotes only where needed."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER.split(";"))
    writer.writerows(lines)
    return buffer.getvalue().encode(encoding)


def read_credentials(content: bytes) -> list[dict[str, str]]:
    assert content.startswith("\ufeff".encode())  # BOM: Excel opens it with accents intact
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline=""), delimiter=";"))


def run_import(app, tmp_path: Path, content: bytes, out_name: str = "identifiants.csv"):
    source = tmp_path / "coops.csv"
    source.write_bytes(content)
    out = tmp_path / out_name
    result = app.test_cli_runner().invoke(args=["coops", "import", str(source), "--out", str(out)])
    return result, out


def coops(db_check) -> dict[int, dict]:
    return db_check(
        lambda s: {
            c.number: {
                "name": c.name,
                "city": c.city,
                "email": c.email,
                "uai": c.uai,
                "iban": c.iban,
                "phone": c.phone,
                "school": c.school_name,
            }
            for c in s.scalars(sa.select(Coop))
        }
    )


def coop_users(db_check) -> dict[str, tuple[str, bool, str]]:
    return db_check(
        lambda s: {
            u.login: (u.role, u.must_change_password, u.password_hash)
            for u in s.scalars(sa.select(User).where(User.role == "coop"))
        }
    )


def assert_logs_in_and_must_change_password(app, login: str, password: str) -> None:
    client = app.test_client()
    response = client.post("/connexion", data={"login": login, "password": password})
    assert response.status_code == 302, html.unescape(response.get_data(as_text=True))[:300]
    assert response.headers["Location"] == "/mot-de-passe"
    # Until the password is changed, every page leads back to the change form.
    assert client.get("/").headers["Location"] == "/mot-de-passe"
    page = html.unescape(client.get("/mot-de-passe").get_data(as_text=True))
    assert "Choisissez votre mot de passe" in page


# --- CLI -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1252"])
def test_cli_import_creates_coops_and_logins_with_temporary_passwords(app, db_check, tmp_path, encoding):
    content = csv_file(line(1), line(42, commune="Les Sables-d'Olonne", code_postal="85100"), encoding=encoding)

    result, out = run_import(app, tmp_path, content)

    assert result.exit_code == 0, result.output
    assert "2 coopérative(s) créée(s), 0 mise(s) à jour." in result.output
    assert str(out) in result.output
    created = coops(db_check)
    assert sorted(created) == [1, 42]
    assert created[42]["name"] == "Coopérative scolaire de l'école n° 42"  # accents read right
    assert created[42]["school"] == "École publique Émile Zola 42"
    assert created[42]["city"] == "Les Sables-d'Olonne"
    assert created[1]["iban"] == iban(1)
    users = coop_users(db_check)
    assert sorted(users) == ["085-001", "085-042"]
    assert all(role == "coop" and must_change for role, must_change, _ in users.values())

    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # passwords: readable by the operator only
    rows = read_credentials(out.read_bytes())
    assert [row["identifiant"] for row in rows] == ["085-001", "085-042"]
    assert rows[1]["nom"] == "Coopérative scolaire de l'école n° 42"
    assert rows[1]["email"] == f"ce.{uai(42).lower()}@ac-nantes.fr"
    assert rows[0]["mot_de_passe_provisoire"] != rows[1]["mot_de_passe_provisoire"]
    for row in rows:
        assert_logs_in_and_must_change_password(app, row["identifiant"], row["mot_de_passe_provisoire"])


def test_cli_reimport_updates_without_duplicate_nor_new_password(app, db_check, tmp_path):
    result, out = run_import(app, tmp_path, csv_file(line(1), line(2)))
    assert result.exit_code == 0, result.output
    passwords = {row["identifiant"]: row["mot_de_passe_provisoire"] for row in read_credentials(out.read_bytes())}
    hashes_before = {login: h for login, (_, _, h) in coop_users(db_check).items()}

    changed = csv_file(line(1), line(2, commune="Challans", code_postal="85300", telephone="0251123456"))
    result, second_out = run_import(app, tmp_path, changed, out_name="second.csv")

    assert result.exit_code == 0, result.output
    assert "0 coopérative(s) créée(s), 2 mise(s) à jour." in result.output
    assert not second_out.exists()  # no new password to hand out
    after = coops(db_check)
    assert sorted(after) == [1, 2]
    assert (after[2]["city"], after[2]["phone"]) == ("Challans", "02 51 12 34 56")
    assert after[1]["city"] == "La Roche-sur-Yon"
    assert {login: h for login, (_, _, h) in coop_users(db_check).items()} == hashes_before
    assert_logs_in_and_must_change_password(app, "085-002", passwords["085-002"])
    # The change is in the audit trail (and only the coop that changed).
    updates = db_check(
        lambda s: [
            (e.actor_login, e.after)
            for e in s.scalars(sa.select(AuditEvent).where(AuditEvent.action == "coop.updated"))
        ]
    )
    assert len(updates) == 1
    assert updates[0][0] == "cli"
    assert updates[0][1]["city"] == "Challans"


def test_cli_import_is_all_or_nothing_and_reports_each_bad_line(app, db_check, tmp_path):
    content = csv_file(
        line(1),  # line 2: valid
        line(3, uai=bad_uai(3)),  # line 3
        line(4, code_postal="44000"),  # line 4: Loire-Atlantique, not Vendée
        line(5, iban=bad_iban(5)),  # line 5
        line(1, nom="Doublon"),  # line 6: same number as line 2
        line(6),  # line 7: valid
    )

    result, out = run_import(app, tmp_path, content)

    assert result.exit_code == 1
    errors = result.stderr
    assert "Import refusé, rien n'a été enregistré" in errors
    assert "ligne 3 : uai : Ce numéro UAI n'est pas valide : la lettre de contrôle ne correspond pas" in errors
    assert "ligne 4 : code_postal : Le code postal doit être celui d'une commune de Vendée" in errors
    assert "ligne 5 : iban : Cet IBAN n'est pas valide" in errors
    assert "ligne 6 : numero : 001 figure déjà ligne 2." in errors
    assert "ligne 2 " not in errors and "ligne 7 " not in errors
    assert coops(db_check) == {}
    assert coop_users(db_check) == {}
    assert not out.exists()


def test_cli_import_reports_missing_columns(app, db_check, tmp_path):
    source = tmp_path / "coops.csv"
    source.write_bytes("numero;nom\r\n1;Coopérative\r\n".encode())

    result = app.test_cli_runner().invoke(args=["coops", "import", str(source)])

    assert result.exit_code == 1
    assert "ligne 1 : Colonnes manquantes : ecole, uai" in result.stderr
    assert coops(db_check) == {}


def test_cli_import_refuses_values_too_long_for_the_database(app, db_check, tmp_path):
    content = csv_file(line(1, commune="Saint-" + "x" * 120))

    result, _ = run_import(app, tmp_path, content)

    assert result.exit_code == 1
    assert "ligne 2 : commune : 100 caractères au plus." in result.stderr
    assert coops(db_check) == {}


def test_cli_import_reports_a_bad_number_once(app, db_check, tmp_path):
    content = csv_file(line(1, numero="abc"), line(2, numero="1_0"), line(3, numero="0"))

    result, _ = run_import(app, tmp_path, content)

    assert result.exit_code == 1
    errors = result.stderr
    assert "ligne 2 : numero : « abc » n'est pas un numéro de coopérative (1 à 9999)." in errors
    assert "ligne 3 : numero : « 1_0 » n'est pas un numéro de coopérative (1 à 9999)." in errors
    assert "ligne 4 : numero : « 0 » n'est pas un numéro de coopérative (1 à 9999)." in errors
    assert "figure déjà" not in errors  # three bad numbers are not "duplicates" of each other


def test_credentials_csv_guards_formula_injection(app, db_check, tmp_path):
    content = csv_file(
        line(1, nom='=HYPERLINK("http://exemple.invalid";"Cliquez")'),
        line(2, nom="+33 coop"),
        line(3, nom="@SUM(A1)"),
        line(4, nom="-1+1"),
    )

    result, out = run_import(app, tmp_path, content)

    assert result.exit_code == 0, result.output
    names = [row["nom"] for row in read_credentials(out.read_bytes())]
    assert names == ['\'=HYPERLINK("http://exemple.invalid";"Cliquez")', "'+33 coop", "'@SUM(A1)", "'-1+1"]
    # The coop's name itself is stored as typed.
    assert coops(db_check)[1]["name"] == '=HYPERLINK("http://exemple.invalid";"Cliquez")'


# --- back office -----------------------------------------------------------------------------------

URL = "/admin/import-coops/"


def upload(client, content: bytes):
    return client.post(URL, data={"file": (io.BytesIO(content), "coops.csv")}, content_type="multipart/form-data")


def test_admin_import_page_explains_the_format(client, login_as, make_staff):
    login_as(make_staff())
    response = client.get(URL)
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    assert "Importer des coopératives" in page
    assert HEADER in page


def test_admin_upload_answers_with_the_credentials_csv(app, client, login_as, make_staff, db_check):
    login_as(make_staff())

    response = upload(client, csv_file(line(1), line(2), encoding="cp1252"))

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="identifiants-coops-') and disposition.endswith('.csv"')
    assert "no-store" in response.headers.get("Cache-Control", "")
    rows = read_credentials(response.data)
    assert [row["identifiant"] for row in rows] == ["085-001", "085-002"]
    assert rows[1]["nom"] == "Coopérative scolaire de l'école n° 2"
    assert sorted(coops(db_check)) == [1, 2]
    assert_logs_in_and_must_change_password(app, "085-001", rows[0]["mot_de_passe_provisoire"])
    audit = db_check(
        lambda s: {e.actor_login for e in s.scalars(sa.select(AuditEvent).where(AuditEvent.action == "coop.created"))}
    )
    assert audit == {"agent"}


def test_admin_reupload_of_known_coops_redirects_with_a_message(client, login_as, make_staff, db_check):
    login_as(make_staff())
    assert upload(client, csv_file(line(1))).mimetype == "text/csv"

    response = upload(client, csv_file(line(1, commune="Luçon", code_postal="85400")))

    assert response.status_code == 302
    page = html.unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "Import terminé : 0 coopérative(s) créée(s), 1 mise(s) à jour." in page
    assert coops(db_check)[1]["city"] == "Luçon"
    assert len(coop_users(db_check)) == 1


def test_admin_upload_of_an_invalid_file_shows_line_errors_and_creates_nothing(client, login_as, make_staff, db_check):
    login_as(make_staff())
    content = csv_file(line(1), line(2, code_postal="44000"), line(3, iban=bad_iban(3)))

    response = upload(client, content)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = html.unescape(response.get_data(as_text=True))
    assert "Import refusé, rien n'a été enregistré" in page
    assert "ligne 3 : code_postal : Le code postal doit être celui d'une commune de Vendée" in page
    assert "ligne 4 : iban : Cet IBAN n'est pas valide" in page
    assert coops(db_check) == {}
    assert coop_users(db_check) == {}


def test_admin_upload_without_a_file_asks_for_one(client, login_as, make_staff):
    login_as(make_staff())
    response = client.post(URL, data={}, content_type="multipart/form-data")
    assert response.status_code == 200
    assert "Choisissez un fichier CSV." in html.unescape(response.get_data(as_text=True))


def test_coop_user_gets_403_on_the_import_page(client, login_as, make_coop, db_check):
    login_as(make_coop(9))
    assert client.get(URL).status_code == 403
    assert upload(client, csv_file(line(1))).status_code == 403
    assert sorted(coops(db_check)) == [9]


def test_anonymous_is_sent_to_the_login_page(client, db_check):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/connexion")
    assert upload(client, csv_file(line(1))).headers["Location"].startswith("/connexion")
    assert coops(db_check) == {}


def test_admin_upload_of_a_file_that_is_not_a_coop_list_is_refused_cleanly(client, login_as, make_staff, db_check):
    login_as(make_staff())
    content = (HEADER + "\r\n1;" + "x" * 200_000 + "\r\n").encode()

    response = upload(client, content)

    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    assert "Import refusé, rien n'a été enregistré" in page
    assert "ligne 2 : Ligne illisible" in page
    assert coops(db_check) == {}


def test_cli_import_saves_nothing_when_the_credentials_file_cannot_be_written(app, db_check, tmp_path):
    source = tmp_path / "coops.csv"
    source.write_bytes(csv_file(line(1)))
    out = tmp_path / "dossier-absent" / "identifiants.csv"

    result = app.test_cli_runner().invoke(args=["coops", "import", str(source), "--out", str(out)])

    assert result.exit_code == 1
    assert "Impossible d'écrire le fichier des identifiants" in result.output
    assert "rien n'a été enregistré" in result.output
    assert coops(db_check) == {}  # no account whose temporary password nobody knows
    assert coop_users(db_check) == {}
