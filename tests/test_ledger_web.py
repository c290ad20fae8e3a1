"""The cash-book on the coop face: guided form, classic view, opening, actions, vouchers, CSV/XLSX.

Each step: GET 200, an invalid POST re-renders with the French message on its field (or box) and
records nothing, a valid POST redirects (PRG) and records. Forms carry a one-time token, so a
replayed or concurrent submission records one entry. Another coop's ids answer 404.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import stat
import threading
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import ledger as books
from app.cahier import FIXED_COLUMNS
from app.clock import today as paris_today
from app.models import Action, AuditEvent, Coop, Document, Entry, EntryLine, Ledger, school_year_start

YEAR = school_year_start(paris_today())
YEAR_LABEL = f"{YEAR}-{YEAR + 1}"
CAHIER = f"/coop/cahier/{YEAR}"
NEW = f"{CAHIER}/nouvelle"
NNBSP = "\u202f"  # French thousands separator in amounts


def day(month: int, dom: int) -> date:
    """A date of the current school year."""
    return date(YEAR if month >= 9 else YEAR + 1, month, dom)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def field_error(page: str, name: str) -> str:
    match = re.search(rf'id="{name}-erreur"[^>]*>([^<]*)<', page)
    return html.unescape(match.group(1)) if match else ""


def expense(key: str = "jeton-1", **fields) -> dict[str, str]:
    """A cheque expense of 45,60 € on account 6181, as the browser posts it."""
    data = {
        "form_token": key,
        "version": "",
        "piece": "1",
        "date": day(10, 2).strftime("%d/%m/%Y"),
        "label": "Livres pour la BCD",
        "payment_mode": "cheque",
        "cheque_number": "0001234",
        "action": "",
        "new_action": "",
        "kind": "expense",
        "bank_amount": "45,60",
        "cash_amount": "",
        "splits-0-account": "6181",
        "splits-0-amount": "45,60",
        "splits-1-account": "",
        "splits-1-amount": "",
        "submit": "Valider et calculer cette opération comptable",
    }
    data.update(fields)
    return data


def receipt(key: str = "jeton-r", **fields) -> dict[str, str]:
    """The split receipt of the issue: bank 120,00 + cash 30,00 over 756 (100,00) and 708 (50,00)."""
    return expense(
        key,
        **{
            "piece": "R1",
            "label": "Cotisations et gâteaux",
            "payment_mode": "remise",
            "cheque_number": "",
            "kind": "receipt",
            "bank_amount": "120,00",
            "cash_amount": "30,00",
            "splits-0-account": "756",
            "splits-0-amount": "100,00",
            "splits-1-account": "708",
            "splits-1-amount": "50,00",
            **fields,
        },
    )


def entries(db_check, coop_id: int | None = None) -> list[Entry]:
    def run(s):
        query = sa.select(Entry).order_by(Entry.id)
        if coop_id is not None:
            query = query.where(Entry.coop_id == coop_id)
        found = s.scalars(query).all()
        for entry in found:  # load what the assertions read
            _ = [(line.account.code, line.amount_cents, line.cleared_on) for line in entry.lines], entry.action
        return found

    return db_check(run)


def lines_of(entry: Entry) -> dict[str, int]:
    return {line.account.code: line.amount_cents for line in entry.lines}


def count(db_check, model) -> int:
    return db_check(lambda s: s.scalar(sa.select(sa.func.count()).select_from(model)))


def book(
    db_check,
    coop_id: int,
    *,
    piece: str,
    when: date,
    label: str = "Opération",
    kind: str = "expense",
    bank: int = 0,
    cash: int = 0,
    splits: tuple[tuple[str, int], ...] = (),
    mode: str = "",
    cheque: str = "",
    action_id: int | None = None,
) -> int:
    """Record an entry through the domain (test setup), return its id."""
    if kind in ("receipt", "advance_returned"):
        treasury = books.Treasury(bank_in=bank, cash_in=cash)
    elif kind == "deposit":
        treasury = books.Treasury(bank_in=bank, cash_out=bank)
    elif kind == "withdrawal":
        treasury = books.Treasury(bank_out=bank, cash_in=bank)
    elif kind == "advance_justified":
        treasury = books.Treasury()
    else:
        treasury = books.Treasury(bank_out=bank, cash_out=cash)
    mode = mode or {
        "receipt": "remise",
        "deposit": "interne",
        "withdrawal": "interne",
        "advance_justified": "regie",
    }.get(kind, "cheque" if bank else "especes")

    def run(s):
        ledger = books.open_ledger(s, s.get(Coop, coop_id), YEAR)
        entry = books.record_entry(
            s,
            ledger,
            books.EntryData(
                piece=piece,
                date=when,
                label=label,
                payment_mode=mode,
                kind=kind,
                treasury=treasury,
                splits=[books.Split(code, amount) for code, amount in splits],
                cheque_number=cheque,
                action_id=action_id,
            ),
            by=None,
        )
        s.commit()
        return entry.id

    return db_check(run)


def set_opening(db_check, coop_id: int, bank: int, cash: int) -> None:
    def run(s):
        books.record_opening(s, books.open_ledger(s, s.get(Coop, coop_id), YEAR), bank=bank, cash=cash, by=None)
        s.commit()

    db_check(run)


def make_action(db_check, coop_id: int, name: str) -> int:
    def run(s):
        action = books.create_action(s, coop_id, name, by=None)
        s.commit()
        return action.id

    return db_check(run)


@pytest.fixture
def coop(make_coop, login_as):
    info = make_coop(1)
    login_as(info)
    return info


# -- the guided form -------------------------------------------------------------------------------


def test_new_entry_form_suggests_piece_date_and_next_cheque(client, coop, db_check):
    book(db_check, coop.id, piece="41", when=day(9, 20), bank=1000, splits=(("6181", 1000),), cheque="0001234")
    response = client.get(NEW, follow_redirects=True)
    page = text(response)
    assert response.status_code == 200
    assert "Création d'une nouvelle opération comptable" in page
    assert re.search(r'id="piece"[^>]*value="42"', page)
    assert re.search(rf'id="date"[^>]*type="date"[^>]*value="{paris_today().isoformat()}"', page)
    assert re.search(r'id="cheque_number"[^>]*value="0001235"', page)
    for label in ("Chèque", "Virement", "Espèces", "Carte bancaire", "Prélèvement", "Remise de chèques"):
        assert f">{label}</option>" in page
    assert "61810008 — Livres, abonnements, documentation" in page  # the 8-digit OCCE code and the label
    assert "75600008 — Cotisations coopératives des familles" in page
    assert 'value="Valider et calculer cette opération comptable"' in page
    assert re.search(r'name="form_token" type="hidden" value="[0-9a-f]{32}"', page)


def test_piece_suggestion_follows_the_series_of_the_last_entry(client, coop, db_check):
    for piece in ("D01", "D02"):
        book(db_check, coop.id, piece=piece, when=day(9, 20), bank=100, splits=(("6181", 100),), cheque=piece[1:])
    assert re.search(r'id="piece"[^>]*value="D03"', text(client.get(NEW, follow_redirects=True)))
    book(db_check, coop.id, piece="R7", when=day(9, 21), kind="receipt", bank=100, splits=(("756", 100),))
    assert re.search(r'id="piece"[^>]*value="R8"', text(client.get(NEW, follow_redirects=True)))


def test_every_form_gets_its_own_token(client, coop):
    pages = [client.get(NEW, follow_redirects=True).get_data(as_text=True) for _ in range(3)]
    tokens = {re.search(r'name="form_token" type="hidden" value="(\w+)"', page).group(1) for page in pages}
    assert len(tokens) == 3


def test_get_pages_create_no_ledger(client, coop, db_check):
    for url in (
        CAHIER,
        f"{NEW}?jeton={'0' * 32}",
        f"{CAHIER}/report",
        f"{CAHIER}/import",
        f"/coop/actions?annee={YEAR}",
        f"{CAHIER}/export.csv",
        f"{CAHIER}?impression=1",
    ):
        assert client.get(url).status_code == 200, url
    assert count(db_check, Ledger) == 0
    assert "Aucune opération n'est encore enregistrée" in text(client.get(CAHIER))


def test_valid_expense_redirects_to_the_cahier_and_records_a_balanced_entry(client, coop, db_check):
    response = client.post(NEW, data=expense())
    [entry] = entries(db_check)
    assert response.status_code == 302
    assert response.headers["Location"] == f"{CAHIER}#op-{entry.id}"
    assert "Opération 1 enregistrée." in text(client.get(CAHIER))
    assert (entry.piece, entry.date, entry.label, entry.payment_mode, entry.cheque_number) == (
        "1",
        day(10, 2),
        "Livres pour la BCD",
        "cheque",
        "0001234",
    )
    assert lines_of(entry) == {"6181": 4560, "512": -4560}
    event = db_check(lambda s: s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "entry.created")))
    assert event.entity_id == entry.id and event.actor_login == "085-001"


def test_split_receipt_over_bank_and_cash(client, coop, db_check):
    assert client.post(NEW, data=receipt()).status_code == 302
    [entry] = entries(db_check)
    assert lines_of(entry) == {"512": 12000, "530": 3000, "756": -10000, "708": -5000}
    assert entry.cheque_number == ""


def test_french_date_typed_by_hand_is_accepted(client, coop, db_check):
    assert client.post(NEW, data=expense(date=day(10, 2).strftime("%d/%m/%Y"))).status_code == 302
    assert (
        client.post(
            NEW, data=expense("jeton-2", piece="2", cheque_number="0001235", date=day(10, 3).isoformat())
        ).status_code
        == 302
    )
    assert [e.date for e in entries(db_check)] == [day(10, 2), day(10, 3)]


def test_cheque_number_is_kept_only_for_a_cheque_the_coop_wrote(client, coop, db_check):
    """The form pre-fills the next cheque number; a cash receipt must not carry it."""
    client.post(
        NEW, data=receipt(payment_mode="especes", cheque_number="0001235", bank_amount="", cash_amount="150,00")
    )
    [entry] = entries(db_check)
    assert entry.cheque_number == ""
    assert "(0001235)" not in text(client.get(CAHIER))


def test_new_action_is_created_with_the_entry_and_offered_next_time(client, coop, db_check):
    assert client.post(NEW, data=expense(new_action="  Classe   de mer ")).status_code == 302
    [entry] = entries(db_check)
    assert entry.action.name == "Classe de mer"
    page = text(client.get(NEW, follow_redirects=True))
    assert f'<option value="{entry.action_id}">Classe de mer</option>' in page
    client.post(NEW, data=expense("jeton-2", piece="2", cheque_number="0001235", action=str(entry.action_id)))
    assert [e.action_id for e in entries(db_check)] == [entry.action_id, entry.action_id]
    assert count(db_check, Action) == 1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"label": ""}, "label", "Ce champ est obligatoire."),
        ({"piece": ""}, "piece", "Ce champ est obligatoire."),
        ({"date": ""}, "date", "Indiquez la date de l'opération."),
        ({"date": "   "}, "date", "Indiquez la date de l'opération."),
        ({"date": "31/02/2026"}, "date", "Date invalide : écrivez-la jj/mm/aaaa"),
        ({"bank_amount": "12,345"}, "bank_amount", "n'est pas un montant (exemple : 1 234,56)"),
        ({"cash_amount": "dix euros"}, "cash_amount", "n'est pas un montant"),
    ],
)
def test_invalid_input_re_renders_on_its_field_and_records_nothing(client, coop, db_check, changes, field, message):
    response = client.post(NEW, data=expense(**changes))
    page = text(response)
    assert response.status_code == 200
    assert "L'opération n'est pas enregistrée : corrigez ce qui est signalé." in page
    assert message in field_error(page, field), page[-4000:]
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="{field}"', page)
    assert 'name="form_token" type="hidden" value="jeton-1"' in page  # the same token: a fixed form records once
    assert count(db_check, Entry) == 0


def test_split_amount_typo_is_shown_on_its_line(client, coop, db_check):
    response = client.post(NEW, data=expense(**{"splits-0-amount": "45;60"}))
    page = text(response)
    assert response.status_code == 200
    assert re.search(r'id="splits-0-amount"[^>]*is-invalid|is-invalid[^>]*id="splits-0-amount"', page)
    assert "« 45;60 » n'est pas un montant" in page
    assert count(db_check, Entry) == 0


@pytest.mark.parametrize(
    ("changes", "where", "message"),
    [
        ({"piece": "41"}, "piece", "La pièce 41 existe déjà dans ce cahier : choisissez un autre numéro."),
        (
            {"date": f"15/08/{YEAR}"},
            "date",
            f"La date doit être comprise entre le 01/09/{YEAR} et le 31/08/{YEAR + 1} (année {YEAR_LABEL}).",
        ),
        (
            {"splits-0-amount": "35,60"},
            "case7",
            f"La ventilation (35,60{NNBSP}€) ne correspond pas au montant de l'opération (45,60{NNBSP}€) : "
            f"reste à ventiler 10,00{NNBSP}€.",
        ),
        (
            {"splits-0-account": "756"},
            "case7",
            "Le compte 75600008 ne convient pas : choisissez un compte de charge (6…).",
        ),
        ({"cheque_number": ""}, "cheque_number", "Indiquez le numéro du chèque émis."),
        (
            {"bank_amount": ""},
            "bank_amount",
            "Une dépense sort de la banque ou de la caisse : indiquez le montant payé.",
        ),
        ({"splits-0-account": ""}, "case7", "Choisissez le compte de chaque ligne de ventilation."),
        (
            {
                "kind": "deposit",
                "bank_amount": "10,00",
                "cash_amount": "20,00",
                "splits-0-account": "",
                "splits-0-amount": "",
            },
            "bank_amount",
            "Pour un mouvement entre caisse et banque, indiquez un seul montant.",
        ),
    ],
)
def test_domain_refusals_show_in_the_right_box_and_record_nothing(client, coop, db_check, changes, where, message):
    book(db_check, coop.id, piece="41", when=day(9, 20), bank=1000, splits=(("6181", 1000),), cheque="0001000")
    response = client.post(NEW, data=expense(**changes))
    page = text(response)
    assert response.status_code == 200
    assert "L'opération n'est pas enregistrée" in page
    if where == "case7":
        box = page[page.index('id="case7"') : page.index('id="splits"')]
        assert message in box
        assert f"Case 7</a> : {message}" in page
    else:
        assert field_error(page, where) == message
    assert count(db_check, Entry) == 1
    assert count(db_check, Action) == 0


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"payment_mode": "remise", "cheque_number": ""}, "« Remise de chèques » ne va pas avec le type « Dépense »"),
        ({"kind": "receipt", "payment_mode": "prelevement", "splits-0-account": "756"}, "« Prélèvement » ne va pas"),
    ],
)
def test_an_impossible_payment_mode_and_kind_pair_is_explained_on_box_4(client, coop, db_check, changes, expected):
    """Box 4 offers every mode; a mode that cannot go with box 6's type is refused there, never replaced."""
    response = client.post(NEW, data=expense(**changes))
    page = text(response)
    assert response.status_code == 200
    assert expected in field_error(page, "payment_mode")
    assert "Changez le type d'opération en case 6" in field_error(page, "payment_mode")
    assert count(db_check, Entry) == 0


def test_box_4_lists_every_payment_mode_whatever_the_type(client, coop):
    page = text(client.get(NEW, follow_redirects=True))
    select = page[page.index('id="payment_mode"') : page.index("</select>", page.index('id="payment_mode"'))]
    for label in ("Chèque", "Virement", "Espèces", "Carte bancaire", "Prélèvement", "Remise de chèques"):
        assert f">{label}</option>" in select
    assert " hidden" not in select


def test_enter_without_javascript_saves_rather_than_adds_a_line(client, coop, db_check):
    """A browser submitting with Enter sends the form's first submit button: it must be the one that saves."""
    page = text(client.get(NEW, follow_redirects=True))
    form = page[page.index('id="entry-form"') :]
    first_submit = re.search(r'<(?:button|input)[^>]*type="submit"[^>]*>', form).group(0)
    assert 'name="submit"' in first_submit
    assert form.index('name="submit"') < form.index('name="add_line"')
    response = client.post(NEW, data={**expense(), "submit": "1"})
    assert response.status_code == 302
    assert count(db_check, Entry) == 1


def test_entry_refused_by_the_domain_does_not_keep_its_new_action(client, coop, db_check):
    client.post(NEW, data=expense(new_action="Kermesse", **{"splits-0-amount": "1,00"}))
    assert count(db_check, Action) == 0 and count(db_check, Entry) == 0


def test_add_line_without_javascript_keeps_what_was_typed(client, coop, db_check):
    data = receipt(
        add_line="Ajouter une ligne de ventilation", **{"splits-2-account": "7541", "splits-2-amount": "1,00"}
    )
    del data["submit"]
    response = client.post(NEW, data=data)
    page = text(response)
    assert response.status_code == 200
    assert len(re.findall(r'class="split-row"', page)) >= 4
    assert re.search(r'id="splits-2-amount"[^>]*value="1,00"', page)
    assert re.search(r'id="label"[^>]*value="Cotisations et gâteaux"', page)
    assert "L'opération n'est pas enregistrée" not in page
    assert count(db_check, Entry) == 0


def test_other_coops_action_or_a_forged_id_is_refused_on_box_5(client, coop, make_coop, db_check):
    other = make_coop(2)
    foreign = make_action(db_check, other.id, "Action de l'autre coop")
    for value in (str(foreign), "abc"):
        response = client.post(NEW, data=expense(action=value))
        assert response.status_code == 200, value
        assert field_error(text(response), "action") == "Cette action n'existe pas."
    assert count(db_check, Entry) == 0


def test_closed_ledger_refuses_new_entries_with_a_message(client, coop, db_check):
    book(db_check, coop.id, piece="1", when=day(9, 20), bank=1000, splits=(("6181", 1000),), cheque="1")
    db_check(lambda s: (s.execute(sa.update(Ledger).values(status="closed")), s.commit()))
    response = client.post(NEW, data=expense(piece="2", cheque_number="2"))
    assert response.status_code == 200
    assert f"Le cahier {YEAR_LABEL} est clôturé : il ne peut plus être modifié." in text(response)
    assert count(db_check, Entry) == 1


# -- double submission ---------------------------------------------------------------------------


def test_the_form_token_is_in_the_address_so_back_finds_the_sent_form(client, coop, db_check):
    """Back re-fetches the (no-store) form page: the token in its address tells it was already sent."""
    response = client.get(NEW)
    assert response.status_code == 302
    address = response.headers["Location"]
    token = re.fullmatch(rf"{NEW}\?jeton=([0-9a-f]{{32}})", address).group(1)
    page = text(client.get(address))
    assert f'name="form_token" type="hidden" value="{token}"' in page
    assert text(client.get(address)).count(token) == page.count(token)  # a reload keeps the same token

    assert client.post(address, data=expense(token)).status_code == 302
    [entry] = entries(db_check)
    back = client.get(address)  # what the browser's Back button does
    page = text(back)
    assert back.status_code == 200
    assert "Cette opération est déjà enregistrée" in page
    assert f"c'est l'opération 1 du {day(10, 2):%d/%m/%Y}, « Livres pour la BCD »" in re.sub(r"<[^>]+>", "", page)
    assert "Rien n'a été ajouté en double." in page
    assert "Valider et calculer" not in page and 'name="form_token"' not in page
    assert f'href="/coop/cahier/operation/{entry.id}/modifier"' in page
    assert len(entries(db_check)) == 1
    assert client.get(f"{NEW}?jeton=pas-un-jeton").status_code == 302


def test_same_token_twice_records_one_entry_and_says_so(client, coop, db_check):
    first = client.post(NEW, data=expense())
    second = client.post(NEW, data=expense())  # a refresh after POST, or Back then submit
    [entry] = entries(db_check)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"] == f"{CAHIER}#op-{entry.id}"
    page = text(client.get(CAHIER))
    assert "L'opération 1 était déjà enregistrée : rien n'a été ajouté en double." in page


def test_same_token_with_a_changed_form_still_records_once(client, coop, db_check):
    client.post(NEW, data=expense())
    response = client.post(NEW, data=expense(piece="2", label="Autre chose"))
    assert response.status_code == 302
    [entry] = entries(db_check)
    assert entry.label == "Livres pour la BCD"


def test_concurrent_posts_with_the_same_token_record_one_entry(app, make_coop, login_as, db_check):
    info = make_coop(1)
    clients = [login_as(info, on=app.test_client()) for _ in range(2)]
    barrier = threading.Barrier(len(clients))
    results: list = [None] * len(clients)

    def submit(index: int) -> None:
        barrier.wait()
        results[index] = clients[index].post(NEW, data=expense(new_action="Classe de mer"))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r.status_code for r in results] == [302, 302]
    [entry] = entries(db_check)
    assert {r.headers["Location"] for r in results} == {f"{CAHIER}#op-{entry.id}"}
    assert count(db_check, Action) == 1 and count(db_check, EntryLine) == 2


# -- edit and delete -------------------------------------------------------------------------------


def _edit_form(client, entry_id: int) -> dict[str, str]:
    page = client.get(f"/coop/cahier/operation/{entry_id}/modifier").get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    return expense("", version=version)


def test_edit_form_shows_the_entry(client, coop, db_check):
    action = make_action(db_check, coop.id, "Photos")
    entry_id = book(
        db_check,
        coop.id,
        piece="D7",
        when=day(11, 5),
        label="Achat photos",
        bank=123456,
        splits=(("607", 100000), ("6181", 23456)),
        cheque="77",
        action_id=action,
    )
    response = client.get(f"/coop/cahier/operation/{entry_id}/modifier")
    page = text(response)
    assert response.status_code == 200
    assert "Modification de l'opération D7" in page
    assert re.search(r'id="piece"[^>]*value="D7"', page)
    assert re.search(rf'id="date"[^>]*value="{day(11, 5).isoformat()}"', page)
    assert re.search(rf'id="bank_amount"[^>]*value="1{NNBSP}234,56"', page)
    assert re.search(r'id="splits-0-amount"[^>]*value="1\u202f000,00"', page)
    assert re.search(r'<option selected value="607">', page) and re.search(r'<option selected value="6181">', page)
    assert f'<option selected value="{action}">Photos</option>' in page
    assert re.search(r'id="kind-1"[^>]*value="expense"', page) and "checked" in page.split('id="kind-1"')[0][-80:]


def test_edit_saves_redirects_and_bumps_the_version(client, coop, db_check):
    entry_id = book(
        db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="0001234"
    )
    data = {
        **_edit_form(client, entry_id),
        "label": "Livres et revues",
        "bank_amount": "50,00",
        "splits-0-amount": "30,00",
        "splits-1-account": "6068",
        "splits-1-amount": "20,00",
    }
    response = client.post(f"/coop/cahier/operation/{entry_id}/modifier", data=data)
    assert response.status_code == 302 and response.headers["Location"] == f"{CAHIER}#op-{entry_id}"
    assert "Opération 1 modifiée." in text(client.get(CAHIER))
    [entry] = entries(db_check)
    assert entry.label == "Livres et revues" and entry.version == 2
    assert lines_of(entry) == {"512": -5000, "6181": 3000, "6068": 2000}


def test_invalid_edit_re_renders_and_changes_nothing(client, coop, db_check):
    entry_id = book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    book(db_check, coop.id, piece="2", when=day(10, 3), bank=100, splits=(("6181", 100),), cheque="2")
    for changes, field, message in (
        ({"piece": "2"}, "piece", "La pièce 2 existe déjà"),
        ({"bank_amount": "abc"}, "bank_amount", "n'est pas un montant"),
    ):
        response = client.post(
            f"/coop/cahier/operation/{entry_id}/modifier", data={**_edit_form(client, entry_id), **changes}
        )
        assert response.status_code == 200
        assert message in field_error(text(response), field)
    entry = entries(db_check)[0]
    assert (entry.piece, entry.version, lines_of(entry)) == ("1", 1, {"6181": 4560, "512": -4560})


def test_stale_edit_is_refused_without_overwriting(app, coop, login_as, db_check):
    entry_id = book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    first = login_as(coop, on=app.test_client())
    second = login_as(coop, on=app.test_client())
    stale = _edit_form(second, entry_id)
    assert (
        first.post(
            f"/coop/cahier/operation/{entry_id}/modifier",
            data={**_edit_form(first, entry_id), "label": "Version du premier poste"},
        ).status_code
        == 302
    )
    response = second.post(f"/coop/cahier/operation/{entry_id}/modifier", data={**stale, "label": "Version périmée"})
    assert response.status_code == 200  # the saved values, with this tab's beside (tests/test_entry_conflict.py)
    assert "modifiée dans un autre onglet" in text(response)
    [entry] = entries(db_check)
    assert entry.label == "Version du premier poste" and entry.version == 2


def _clear(db_check, entry_id: int, on: date) -> None:
    def run(s):
        s.execute(
            sa.update(EntryLine)
            .where(
                EntryLine.entry_id == entry_id,
                EntryLine.account_id == s.scalar(sa.text("SELECT id FROM account WHERE code = '512'")),
            )
            .values(cleared_on=on)
        )
        s.commit()

    db_check(run)


def test_changing_the_bank_amount_of_a_cleared_entry_undoes_the_pointage_with_a_warning(client, coop, db_check):
    entry_id = book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    _clear(db_check, entry_id, day(10, 31))
    # The label alone: the pointage stays
    client.post(
        f"/coop/cahier/operation/{entry_id}/modifier",
        data={**_edit_form(client, entry_id), "cheque_number": "1", "label": "Livres BCD"},
    )
    assert "le pointage de cette opération a été annulé" not in text(client.get(CAHIER))

    def bank_line():
        return next(line for line in entries(db_check)[0].lines if line.account.code == "512")

    assert bank_line().cleared_on == day(10, 31)
    # The amount: the pointage goes, and the teacher is told
    response = client.post(
        f"/coop/cahier/operation/{entry_id}/modifier",
        data={**_edit_form(client, entry_id), "cheque_number": "1", "bank_amount": "46,60", "splits-0-amount": "46,60"},
    )
    assert response.status_code == 302
    page = text(client.get(CAHIER))
    assert "le pointage de cette opération a été annulé" in page
    assert bank_line().cleared_on is None and bank_line().amount_cents == -4660


def test_opening_entry_is_not_edited_through_the_entry_form(client, coop, db_check):
    set_opening(db_check, coop.id, 50000, 2000)
    [opening] = entries(db_check)
    response = client.get(f"/coop/cahier/operation/{opening.id}/modifier")
    assert response.status_code == 302
    assert "ne peut pas être modifiée ici" in text(client.get(response.headers["Location"]))


def test_delete_needs_the_confirmation_post(client, coop, db_check, app):
    entry_id = book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    client.post(
        f"/coop/cahier/operation/{entry_id}/justificatifs",
        data={"file": (io.BytesIO(pdf_bytes()), "facture.pdf")},
        content_type="multipart/form-data",
    )
    [document] = db_check(lambda s: s.scalars(sa.select(Document)).all())
    stored = Path(app.config["UPLOAD_DIR"]) / document.storage_key
    assert stored.exists()

    response = client.get(f"/coop/cahier/operation/{entry_id}/supprimer")
    page = text(response)
    assert response.status_code == 200
    assert "Supprimer l'opération 1 ?" in page and "Oui, supprimer l'opération 1" in page
    assert count(db_check, Entry) == 1

    response = client.post(f"/coop/cahier/operation/{entry_id}/supprimer")
    assert response.status_code == 302 and response.headers["Location"] == CAHIER
    assert "Opération 1 supprimée." in text(client.get(CAHIER))
    assert count(db_check, Entry) == 0 and count(db_check, Document) == 0
    assert not stored.exists()
    assert db_check(lambda s: s.scalar(sa.select(AuditEvent.id).where(AuditEvent.action == "entry.deleted")))


def test_modify_and_delete_are_offered_only_while_the_ledger_is_open(client, coop, db_check):
    entry_id = book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    assert f'href="/coop/cahier/operation/{entry_id}/modifier"' in text(client.get(CAHIER))
    detail = text(client.get(f"/coop/cahier/operation/{entry_id}"))
    assert f'href="/coop/cahier/operation/{entry_id}/supprimer">Supprimer</a>' in detail
    db_check(lambda s: (s.execute(sa.update(Ledger).values(status="closed")), s.commit()))
    page = text(client.get(CAHIER))
    assert "Ce cahier est clôturé" in page
    assert "/modifier" not in page and "/supprimer" not in page
    assert "/supprimer" not in text(client.get(f"/coop/cahier/operation/{entry_id}"))
    response = client.post(f"/coop/cahier/operation/{entry_id}/supprimer")
    assert "est clôturé" in text(client.get(response.headers["Location"]))
    response = client.post(f"/coop/cahier/operation/{entry_id}/modifier", data=expense(label="Changé"))
    assert response.status_code == 302
    assert "ne peut pas être modifiée ici" in text(client.get(response.headers["Location"]))
    assert count(db_check, Entry) == 1 and entries(db_check)[0].label == "Opération"


# -- tenancy ---------------------------------------------------------------------------------------


@pytest.fixture
def other_coop_data(make_coop, db_check, app):
    """Coop 2 with an entry, a voucher and an action; returns their ids."""
    other = make_coop(2, name="Coopérative des Voisins")
    action_id = make_action(db_check, other.id, "Sortie secrète")
    entry_id = book(
        db_check,
        other.id,
        piece="B1",
        when=day(10, 2),
        label="Achat chez les voisins",
        bank=999,
        splits=(("6181", 999),),
        cheque="555",
        action_id=action_id,
    )

    def run(s):
        from app import documents

        document = documents.store_document(
            s,
            upload_dir=app.config["UPLOAD_DIR"],
            coop_id=other.id,
            kind="voucher",
            filename="voisins.pdf",
            content=pdf_bytes(),
            max_bytes=10 * 1024 * 1024,
            by=None,
            entry_id=entry_id,
        )
        s.commit()
        return document.id

    return {"entry": entry_id, "document": db_check(run), "action": action_id, "coop": other.id}


def _state(db_check):
    def run(s):
        return (
            [(e.id, e.piece, e.label, e.version) for e in s.scalars(sa.select(Entry).order_by(Entry.id))],
            [(d.id, d.entry_id) for d in s.scalars(sa.select(Document).order_by(Document.id))],
            [(a.id, a.name, a.is_archived) for a in s.scalars(sa.select(Action).order_by(Action.id))],
            s.scalar(sa.select(sa.func.sum(EntryLine.amount_cents * EntryLine.id))),
        )

    return db_check(run)


def test_another_coops_ids_answer_404_and_change_nothing(client, coop, other_coop_data, db_check):
    ids = other_coop_data
    before = _state(db_check)
    requests = [
        ("get", f"/coop/cahier/operation/{ids['entry']}", None),
        ("get", f"/coop/cahier/operation/{ids['entry']}/modifier", None),
        ("post", f"/coop/cahier/operation/{ids['entry']}/modifier", expense(label="Piraté", piece="B1")),
        ("get", f"/coop/cahier/operation/{ids['entry']}/supprimer", None),
        ("post", f"/coop/cahier/operation/{ids['entry']}/supprimer", {}),
        (
            "post",
            f"/coop/cahier/operation/{ids['entry']}/justificatifs",
            {"file": (io.BytesIO(pdf_bytes()), "intrus.pdf")},
        ),
        ("get", f"/justificatifs/{ids['document']}", None),
        ("post", f"/coop/actions/{ids['action']}/renommer", {"name": "Piraté"}),
        ("post", f"/coop/actions/{ids['action']}/archiver", {}),
    ]
    for method, url, data in requests:
        response = getattr(client, method)(url, data=data) if method == "post" else client.get(url)
        assert response.status_code == 404, (method, url, response.status_code)
        body = response.get_data(as_text=True)
        assert "voisins" not in body.lower() and "Sortie secrète" not in body, url
    assert _state(db_check) == before
    refusals = db_check(
        lambda s: s.scalar(
            sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "access.denied")
        )
    )
    assert refusals == len(requests)
    page = text(client.get(CAHIER))
    assert "Achat chez les voisins" not in page and "Sortie secrète" not in page
    assert "Sortie secrète" not in text(client.get("/coop/actions"))


def test_staff_can_download_a_coops_voucher_anonymous_cannot(app, make_staff, login_as, other_coop_data):
    url = f"/justificatifs/{other_coop_data['document']}"
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/connexion")
    staff = login_as(make_staff(), on=app.test_client())
    response = download(staff, other_coop_data["document"])
    assert response.status_code == 200 and response.data == pdf_bytes()
    assert staff.get("/justificatifs/999999").status_code == 404
    assert staff.get(f"/coop/cahier/operation/{other_coop_data['entry']}").status_code == 403


# -- vouchers --------------------------------------------------------------------------------------


def pdf_bytes(text_line: str = "Facture Librairie des Dunes 45,60 EUR") -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    document.drawString(72, 720, text_line)
    document.showPage()
    document.save()
    return buffer.getvalue()


def pdf_with_javascript() -> bytes:
    from pypdf import PdfWriter
    from pypdf.generic import DictionaryObject, NameObject, TextStringObject

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    action = DictionaryObject(
        {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert('coucou');")}
    )
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def pdf_with_hidden_javascript() -> bytes:
    """An /OpenAction script kept in a compressed object stream: « /JavaScript » never appears in clear."""
    import struct
    import zlib

    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets: dict[int, int] = {}
    header, inner = b"5 0 ", b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>"
    packed = zlib.compress(header + inner)

    def obj(number: int, body: bytes) -> None:
        offsets[number] = out.tell()
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")

    obj(
        1,
        f"<< /Type /ObjStm /N 1 /First {len(header)} /Filter /FlateDecode /Length {len(packed)} >>\nstream\n".encode()
        + packed
        + b"\nendstream",
    )
    obj(2, b"<< /Type /Catalog /Pages 3 0 R /OpenAction 5 0 R >>")
    obj(3, b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>")
    obj(4, b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 595 842] >>")
    offsets[6] = out.tell()
    xref = b"".join(
        [
            struct.pack(">BIH", 0, 0, 65535),
            *(struct.pack(">BIH", 1, offsets[n], 0) for n in (1, 2, 3, 4)),
            struct.pack(">BIH", 2, 1, 0),
            struct.pack(">BIH", 1, offsets[6], 0),
        ]
    )
    out.write(
        f"6 0 obj\n<< /Type /XRef /Size 7 /W [1 4 2] /Root 2 0 R /Length {len(xref)} >>\nstream\n".encode()
        + xref
        + b"\nendstream\nendobj\n"
    )
    out.write(f"startxref\n{offsets[6]}\n%%EOF\n".encode())
    content = out.getvalue()
    assert b"/JavaScript" not in content and b"/JS" not in content
    return content


def pdf_with_attachment() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes())))
    writer.add_attachment("programme.exe", b"MZ\x90\x00")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def pdf_with_a_link() -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, invariant=1)
    document.drawString(72, 720, "Commande en ligne : https://www.example.org/facture")
    document.linkURL("https://www.example.org/facture", (72, 710, 400, 730))
    document.showPage()
    document.save()
    return buffer.getvalue()


def jpeg_with_exif() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (640, 480), (200, 180, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    exif[0x8825] = {1: "N", 2: (46.0, 40.0, 12.0), 3: "W", 4: (1.0, 47.0, 3.0)}  # GPS
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def png_bytes() -> bytes:
    """A scan exported with a transparent background and black writing."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((50, 80, 250, 120), fill=(0, 0, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def entry_id(coop, db_check):
    return book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")


def download(client, document_id: int):
    """GET a voucher and close the streamed file."""
    response = client.get(f"/justificatifs/{document_id}")
    response.get_data()  # read it all, then close the file send_file opened
    response.close()
    return response


def upload(client, entry_id: int, content: bytes, name: str):
    return client.post(
        f"/coop/cahier/operation/{entry_id}/justificatifs",
        data={"file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def _documents(db_check) -> list[Document]:
    return db_check(lambda s: s.scalars(sa.select(Document).order_by(Document.id)).all())


def test_pdf_voucher_is_stored_privately_and_listed(client, entry_id, db_check, app):
    content = pdf_bytes()
    response = upload(client, entry_id, content, "Facture été.pdf")
    assert response.status_code == 302 and response.headers["Location"] == f"/coop/cahier/operation/{entry_id}"
    page = text(client.get(response.headers["Location"]))
    assert "Justificatif ajouté." in page
    [document] = _documents(db_check)
    assert (document.entry_id, document.original_name, document.content_type) == (
        entry_id,
        "Facture été.pdf",
        "application/pdf",
    )
    assert f'href="/justificatifs/{document.id}">Facture été.pdf</a>' in page
    upload_dir = Path(app.config["UPLOAD_DIR"]).resolve()
    stored = upload_dir / document.storage_key
    assert re.fullmatch(r"[0-9a-f]{32}", document.storage_key)
    assert stored.read_bytes() == content
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    static_dir = Path(app.static_folder).resolve()
    assert static_dir not in upload_dir.parents and upload_dir != static_dir


def test_download_headers(client, entry_id, db_check):
    upload(client, entry_id, pdf_bytes(), "Facture été.pdf")
    [document] = _documents(db_check)
    response = download(client, document.id)
    assert response.status_code == 200
    assert response.data == pdf_bytes()
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''Facture%20%C3%A9t%C3%A9.pdf" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    assert "no-store" in response.headers["Cache-Control"]


def test_phone_photo_is_re_encoded_without_exif(client, entry_id, db_check, app):
    from PIL import Image

    original = jpeg_with_exif()
    assert Image.open(io.BytesIO(original)).getexif().get(0x010F) == "PhoneMaker"
    assert upload(client, entry_id, original, "IMG_2034.JPG").status_code == 302
    [document] = _documents(db_check)
    stored = (Path(app.config["UPLOAD_DIR"]) / document.storage_key).read_bytes()
    assert stored != original and b"PhoneMaker" not in stored and b"Phone 12" not in stored
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG" and image.size == (640, 480)
    assert dict(image.getexif()) == {}
    assert document.content_type == "image/jpeg" and document.original_name == "IMG_2034.jpg"
    assert download(client, document.id).data == stored


def test_pdf_with_a_web_link_is_refused_with_advice(client, entry_id, db_check):
    # issue 14 §6: only moves within the document are allowed (tests/test_pdf_uploads.py has every case)
    response = upload(client, entry_id, pdf_with_a_link(), "commande.pdf")
    assert response.status_code == 302
    assert "Ce PDF contient un lien ou une action automatique" in text(client.get(response.headers["Location"]))
    assert _documents(db_check) == []


def test_png_scan_is_accepted(client, entry_id, db_check):
    from PIL import Image

    assert upload(client, entry_id, png_bytes(), "scan.png").status_code == 302
    [document] = _documents(db_check)
    downloaded = download(client, document.id)
    assert downloaded.status_code == 200
    image = Image.open(io.BytesIO(downloaded.data))
    assert image.size == (300, 200)
    # still readable: white paper, black writing (a transparent background must not turn black)
    assert min(image.getpixel((10, 10))) > 240 and max(image.getpixel((150, 100))) < 15


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (
            b"<!doctype html><html><script>alert(1)</script></html>",
            "facture.pdf",
            "Seuls les fichiers PDF, JPEG et PNG sont acceptés",
        ),
        (
            b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200,
            "facture.pdf",
            "Seuls les fichiers PDF, JPEG et PNG sont acceptés",
        ),
        (b"MZ\x90\x00" + b"\x00" * 200, "scan.png", "Seuls les fichiers PDF, JPEG et PNG sont acceptés"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "photo.png",
            "Seuls les fichiers PDF, JPEG et PNG sont acceptés",
        ),
        ("js", "facture.pdf", "Ce PDF contient du code ou des fichiers intégrés : il est refusé par sécurité."),
        ("hidden-js", "facture.pdf", "Ce PDF contient du code ou des fichiers intégrés : il est refusé par sécurité."),
        ("attachment", "facture.pdf", "Ce PDF contient du code ou des fichiers intégrés : il est refusé par sécurité."),
        (b"%PDF-1.7\n garbage without pages", "facture.pdf", "Ce PDF est illisible ou abîmé"),
        (b"", "vide.pdf", "Le fichier est vide."),
    ],
)
def test_dangerous_or_fake_files_are_refused(client, entry_id, db_check, app, content, name, message):
    content = {
        "js": pdf_with_javascript,
        "hidden-js": pdf_with_hidden_javascript,
        "attachment": pdf_with_attachment,
    }.get(content, lambda: content)()
    upload_dir = Path(app.config["UPLOAD_DIR"])
    files_before = set(os.listdir(upload_dir)) if upload_dir.exists() else set()
    response = upload(client, entry_id, content, name)
    assert response.status_code == 302
    page = text(client.get(response.headers["Location"]))
    assert message in page
    assert "Aucun justificatif pour cette opération." in page
    assert _documents(db_check) == []
    assert (set(os.listdir(upload_dir)) if upload_dir.exists() else set()) == files_before


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG that declares a huge number of pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("size", [(50_000, 50_000), (7_000, 6_000)])
def test_decompression_bomb_is_refused_without_crashing(client, entry_id, db_check, size):
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        # Production does not turn warnings into errors: Pillow only warns up to twice its limit
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        response = upload(client, entry_id, png_bomb(*size), "photo.png")
    assert response.status_code == 302
    assert "Cette image est beaucoup trop grande (trop de pixels)" in text(client.get(response.headers["Location"]))
    assert _documents(db_check) == []


def test_eleven_megabyte_file_is_refused(client, entry_id, db_check):
    big = pdf_bytes() + b"%" + b"x" * (11 * 1024 * 1024)
    # The multipart body is built here: the test client would spool a big one to a file it never closes.
    boundary = "limite-du-formulaire"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="gros.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        f"/coop/cahier/operation/{entry_id}/justificatifs",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 302
    assert "Le fichier dépasse 10 Mo." in text(client.get(response.headers["Location"]))
    assert _documents(db_check) == []


# -- classic view ----------------------------------------------------------------------------------


@pytest.fixture
def year_of_entries(coop, db_check):
    """Opening 1 234,56 / 20,00, a split receipt, a cheque expense with an action, a deposit, an advance."""
    set_opening(db_check, coop.id, 123456, 2000)
    trip = make_action(db_check, coop.id, "Classe de mer")
    ids = {
        "receipt": book(
            db_check,
            coop.id,
            piece="R1",
            when=day(9, 15),
            label="Cotisations et gâteaux",
            kind="receipt",
            bank=12000,
            cash=3000,
            splits=(("756", 10000), ("708", 5000)),
        ),
        "expense": book(
            db_check,
            coop.id,
            piece="D10",
            when=day(10, 3),
            label="Acompte car Classe de mer",
            bank=250000,
            splits=(("6251", 250000),),
            cheque="0004567",
            action_id=trip,
        ),
        "deposit": book(
            db_check, coop.id, piece="D2", when=day(10, 20), label="Dépôt des espèces", kind="deposit", bank=3000
        ),
        "advance": book(
            db_check,
            coop.id,
            piece="A1",
            when=day(11, 4),
            label="Régie Mme Roy",
            kind="advance_paid",
            cash=1500,
            mode="especes",
        ),
    }
    return {"action": trip, **ids}


def _row(page: str, entry_id: int) -> list[str]:
    match = re.search(rf'<tr id="op-{entry_id}"[^>]*>(.*?)</tr>', page, re.S)
    assert match, entry_id
    return [
        re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", match.group(1), re.S)
    ]


def test_classic_view_shows_running_balances_and_totals(client, year_of_entries):
    ids = year_of_entries
    page = text(client.get(CAHIER))
    n = NNBSP
    # piece, date, label, mode, action, bank in/out/balance, cash in/out/balance, advance in/out, cleared, accounts
    receipt_row = _row(page, ids["receipt"])
    assert receipt_row[:5] == ["R1", day(9, 15).strftime("%d/%m/%Y"), "Cotisations et gâteaux", "Remise de chèques", ""]
    assert receipt_row[5:11] == ["120,00", "", f"1{n}354,56", "30,00", "", "50,00"]
    assert receipt_row[13] == "non pointé"
    expense_row = _row(page, ids["expense"])
    assert expense_row[3:5] == ["Chèque (0004567)", "Classe de mer"]
    assert expense_row[5:11] == ["", f"2{n}500,00", f"-1{n}145,44", "", "", "50,00"]
    assert _row(page, ids["deposit"])[5:11] == ["30,00", "", f"-1{n}115,44", "", "30,00", "20,00"]
    assert _row(page, ids["advance"])[5:13] == ["", "", f"-1{n}115,44", "", "15,00", "5,00", "15,00", ""]
    # one column per account used, with its 8-digit code; the totals row
    head = re.search(r"<thead.*?</thead>", page, re.S).group(0)
    assert "62510008" in head and "75600008" in head and "70800008" in head and "61810008" not in head
    totals = re.search(r"<tfoot.*?</tfoot>", page, re.S).group(0)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", totals, re.S)]
    assert cells[:9] == [
        "Totaux",
        f"1{n}384,56",
        f"2{n}500,00",
        f"-1{n}115,44",
        "50,00",
        "45,00",
        "5,00",
        "15,00",
        "0,00",
    ]
    # balance cards, advances in progress included
    assert f"-1{n}115,44\u202f€" in page and "5,00\u202f€" in page
    cards = page[page.index('aria-label="Soldes"') : page.index("</section>")]
    assert "Régies d'avance en cours" in cards and "15,00\u202f€" in cards


def test_sort_by_piece_puts_d2_before_d10(client, year_of_entries):
    ids = year_of_entries
    by_date = text(client.get(CAHIER))
    by_piece = text(client.get(f"{CAHIER}?tri=piece"))

    def order(page):
        return [int(i) for i in re.findall(r'<tr id="op-(\d+)"', page)]

    assert order(by_date)[1:] == [ids["receipt"], ids["expense"], ids["deposit"], ids["advance"]]
    assert order(by_piece).index(ids["deposit"]) < order(by_piece).index(ids["expense"])  # D2 before D10
    # balances stay those of the date order
    assert _row(by_piece, ids["deposit"])[7] == f"-1{NNBSP}115,44"


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("q=car", ["expense"]),
        ("q=0004567", ["expense"]),
        ("q=r1", ["receipt"]),
        ("compte=708", ["receipt"]),
        ("mode=interne", ["deposit"]),
        ("mode=especes", ["advance"]),
        ("action=ACTION", ["expense"]),
    ],
)
def test_filters(client, year_of_entries, query, shown):
    ids = year_of_entries
    page = text(client.get(f"{CAHIER}?{query.replace('ACTION', str(ids['action']))}"))
    assert sorted(int(i) for i in re.findall(r'<tr id="op-(\d+)"', page)) == sorted(ids[name] for name in shown)
    assert f"Filtre actif : {len(shown)} opération(s) affichée(s)." in page
    assert "Tout afficher" in page


def test_filter_totals_follow_the_filter(client, year_of_entries):
    page = text(client.get(f"{CAHIER}?compte=6251"))
    totals = re.search(r"<tfoot.*?</tfoot>", page, re.S).group(0)
    assert f"2{NNBSP}500,00" in totals and "120,00" not in totals


def test_print_view_is_a4_portrait_without_navigation(client, year_of_entries):
    response = client.get(f"{CAHIER}?impression=1&tri=piece")
    page = text(response)
    assert response.status_code == 200
    assert "<nav" not in page and "Se déconnecter" not in page and "Modifier" not in page
    assert "/static/css/print.css" in page
    assert f"Cahier de comptabilité {YEAR_LABEL}" in page and "085-001" in page
    assert f"Banque : -1{NNBSP}115,44\u202f€" in page
    css = client.get("/static/css/print.css")
    assert "size: A4 portrait" in css.get_data(as_text=True)
    css.close()


def test_print_view_groups_the_accounts_in_one_breakdown_column_and_a_table_of_totals(client, year_of_entries):
    page = text(client.get(f"{CAHIER}?impression=1"))
    table = re.search(r'<table class="[^"]*cahier-print.*?</table>', page, re.S).group(0)
    assert "Ventilation" in table and "account-col" not in table  # one column instead of one per account
    row = _row(page, year_of_entries["receipt"])
    assert row[-1] == "70800008\xa050,00 75600008\xa0100,00"  # « code montant » per account line
    totals = re.search(r"<caption>Totaux par compte</caption>.*?</table>", page, re.S).group(0)
    for code, total in (("62510008", f"2{NNBSP}500,00"), ("75600008", "100,00"), ("70800008", "50,00")):
        assert re.search(rf"<th scope=\"row\">{code}</th><td>[^<]+</td><td class=\"text-end\">{total}</td>", totals)


def test_cahier_links_to_the_print_and_export_views(client, year_of_entries):
    page = text(client.get(CAHIER))
    assert "Version imprimable (portrait, A4)" in page
    assert f'href="{CAHIER}/export.csv"' in page and f'href="{CAHIER}/export.xlsx"' in page


def test_unknown_or_future_year_is_404(client, coop):
    assert client.get(f"/coop/cahier/{YEAR + 1}").status_code == 404
    assert client.get(f"/coop/cahier/{YEAR + 1}/nouvelle").status_code == 404
    assert client.get("/coop/cahier/1999").status_code == 404


# -- opening balances ------------------------------------------------------------------------------


def test_opening_step(client, coop, db_check):
    url = f"{CAHIER}/report"
    page = text(client.get(url))
    assert f"Report à nouveau au 1er septembre {YEAR}" in page
    response = client.post(url, data={"bank": "cinq cents", "cash": ""})
    assert response.status_code == 200
    assert "n'est pas un montant" in field_error(text(response), "bank")
    response = client.post(url, data={"bank": "", "cash": "20,00"})
    assert field_error(text(response), "bank") == "Ce champ est obligatoire."
    response = client.post(url, data={"bank": "100,00", "cash": "-5,00"})
    assert field_error(text(response), "cash") == "Une caisse ne peut pas être négative."
    assert count(db_check, Entry) == 0

    response = client.post(url, data={"bank": "1 234,56", "cash": "20,00"})
    assert response.status_code == 302 and response.headers["Location"] == CAHIER
    page = text(client.get(CAHIER))
    assert "Report à nouveau enregistré." in page
    cards = page[page.index('aria-label="Soldes"') : page.index("</section>")]
    assert f"1{NNBSP}234,56\u202f€" in cards and "20,00\u202f€" in cards
    assert "Commencez par le" not in page
    # Changing it replaces the opening entry, never adds a second one
    assert re.search(r'id="bank"[^>]*value="1\u202f234,56"', text(client.get(url)))
    client.post(url, data={"bank": "500,00", "cash": "20,00"})
    [opening] = entries(db_check)
    assert (opening.piece, opening.kind, opening.date) == ("RAN", "opening", date(YEAR, 9, 1))
    assert lines_of(opening) == {"512": 50000, "530": 2000, "110": -52000}


def test_opening_accepts_an_empty_bank_account(client, coop, db_check):
    """A coop may start the year with 0,00 € in the bank (everything in the cash box)."""
    response = client.post(f"{CAHIER}/report", data={"bank": "0,00", "cash": "35,00"})
    assert response.status_code == 302
    [opening] = entries(db_check)
    assert lines_of(opening) == {"530": 3500, "110": -3500}


# -- actions ---------------------------------------------------------------------------------------


def test_actions_create_rename_archive_with_totals(client, coop, db_check):
    url = f"/coop/actions?annee={YEAR}"
    assert "Aucune action pour l'instant." in text(client.get(url))
    response = client.post(url, data={"name": ""})
    assert response.status_code == 200 and field_error(text(response), "name") == "Ce champ est obligatoire."
    assert count(db_check, Action) == 0

    response = client.post(url, data={"name": "Classe de mer"})
    assert response.status_code == 302 and response.headers["Location"] == url
    assert "Action « Classe de mer » créée." in text(client.get(url))
    [action] = db_check(lambda s: s.scalars(sa.select(Action)).all())
    book(
        db_check,
        coop.id,
        piece="1",
        when=day(10, 1),
        bank=250000,
        splits=(("6251", 250000),),
        cheque="1",
        action_id=action.id,
    )
    book(
        db_check,
        coop.id,
        piece="2",
        when=day(10, 2),
        kind="receipt",
        bank=180000,
        cash=2000,
        splits=(("7068", 150000), ("743", 32000)),
        action_id=action.id,
    )
    book(db_check, coop.id, piece="3", when=day(10, 3), bank=999, splits=(("627", 999),), cheque="2")
    page = text(client.get(url))
    cells = _action_row(page, "Classe de mer")
    assert cells[1:4] == [f"2{NNBSP}500,00\u202f€", f"1{NNBSP}820,00\u202f€", "-680,00\u202f€"]

    response = client.post(f"/coop/actions/{action.id}/renommer", data={"name": "Classe de mer 2027"})
    assert response.status_code == 302
    assert "Action renommée." in text(client.get(response.headers["Location"]))
    make_action(db_check, coop.id, "Kermesse")
    response = client.post(f"/coop/actions/{action.id}/renommer", data={"name": "kermesse"})
    assert "Une autre action porte déjà ce nom." in text(client.get(response.headers["Location"]))
    response = client.post(f"/coop/actions/{action.id}/renommer", data={"name": " "})
    assert "Indiquez le nouveau nom de l'action." in text(client.get(response.headers["Location"]))
    assert db_check(lambda s: s.get(Action, action.id).name) == "Classe de mer 2027"
    # the cahier shows the new name
    assert "Classe de mer 2027" in text(client.get(CAHIER))

    response = client.post(f"/coop/actions/{action.id}/archiver", data={"archive": "1"})
    page = text(client.get(response.headers["Location"]))
    assert "Action « Classe de mer 2027 » archivée." in page
    assert "archivée</span>" in page and "Réactiver" in page
    # no longer offered in box 5
    assert f'<option value="{action.id}">' not in text(client.get(NEW, follow_redirects=True))
    # a double click on « Archiver » does not bring it back
    client.post(f"/coop/actions/{action.id}/archiver", data={"archive": "1"})
    assert db_check(lambda s: s.get(Action, action.id).is_archived) is True
    client.post(f"/coop/actions/{action.id}/archiver", data={"archive": "0"})
    assert db_check(lambda s: s.get(Action, action.id).is_archived) is False
    assert f'<option value="{action.id}">' in text(client.get(NEW, follow_redirects=True))


def _action_row(page: str, name: str) -> list[str]:
    match = re.search(rf'<tr[^>]*>\s*<th scope="row">{re.escape(name)}.*?</tr>', page, re.S)
    assert match, name
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", match.group(0), re.S)]


# -- CSV import and exports ------------------------------------------------------------------------


GOOD_CSV = (
    "piece;date;libelle;mode;cheque;action;pointe;banque_entree;banque_sortie;caisse_entree;caisse_sortie;"
    "regie_entree;regie_sortie;6181;756\r\n"
    f"RAN;01/09/{YEAR};Report à nouveau;report;;;;500,00;;20,00;;;;;\r\n"
    f"R1;15/09/{YEAR};Cotisations;remise;;;;120,00;;;;;;;120,00\r\n"
    f"D1;20/09/{YEAR};Livres BCD;cheque;0000123;Lecture;;;45,60;;;;;45,60;\r\n"
)


def test_csv_import_of_a_good_file(client, coop, db_check):
    url = f"{CAHIER}/import"
    page = text(client.get(url))
    assert f"Importer un cahier {YEAR_LABEL} (CSV)" in page
    response = client.post(
        url,
        data={"file": (io.BytesIO(("\ufeff" + GOOD_CSV).encode()), "cahier.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302 and response.headers["Location"] == CAHIER
    page = text(client.get(CAHIER))
    assert f"Import terminé : 3 opération(s) ajoutée(s) au cahier {YEAR_LABEL}." in page
    assert "Livres BCD" in page and "Chèque (0000123)" in page and "Lecture" in page
    assert count(db_check, Entry) == 3


def test_csv_import_of_a_bad_file_lists_line_errors_and_imports_nothing(client, coop, db_check):
    bad = (
        GOOD_CSV + f"D2;31/09/{YEAR};Date impossible;cheque;;;;;10,00;;;;;10,00;\r\n"
        f"R1;16/09/{YEAR};Pièce en double;remise;;;;10,00;;;;;;;12,00\r\n"
    )
    response = client.post(
        f"{CAHIER}/import", data={"file": (io.BytesIO(bad.encode()), "cahier.csv")}, content_type="multipart/form-data"
    )
    page = text(response)
    assert response.status_code == 200
    assert "Import refusé, rien n'a été enregistré." in page
    assert "ligne 5 : date : « 31/09/" in page
    assert "ligne 6 : piece : R1 figure déjà ligne 3." in page
    assert count(db_check, Entry) == 0 and count(db_check, Ledger) == 0 and count(db_check, Action) == 0


def test_csv_import_without_a_file(client, coop):
    response = client.post(f"{CAHIER}/import", data={}, content_type="multipart/form-data")
    assert response.status_code == 200
    assert "Choisissez un fichier CSV." in text(response)


def test_csv_export_response(client, year_of_entries):
    response = client.get(f"{CAHIER}/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="cahier-085-001-{YEAR_LABEL}.csv"'
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert rows[0][:13] == [
        "piece",
        "date",
        "libelle",
        "mode",
        "cheque",
        "action",
        "pointe",
        "banque_entree",
        "banque_sortie",
        "caisse_entree",
        "caisse_sortie",
        "regie_entree",
        "regie_sortie",
    ]
    assert {"6251", "708", "756"} <= set(rows[0][13:])
    assert [row[0] for row in rows[1:]] == ["RAN", "R1", "D10", "D2", "A1"]
    assert rows[3][2:6] == ["Acompte car Classe de mer", "cheque", "0004567", "Classe de mer"]


def test_csv_export_of_an_empty_year_is_just_the_header(client, coop):
    response = client.get(f"{CAHIER}/export.csv")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))
    assert response.status_code == 200 and rows[0][0] == "piece" and len(rows) == 1


def test_xlsx_export_response(client, year_of_entries):
    from openpyxl import load_workbook

    response = client.get(f"{CAHIER}/export.xlsx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response.headers["Content-Disposition"] == f'attachment; filename="cahier-085-001-{YEAR_LABEL}.xlsx"'
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert sheet["A2"].value == "piece" and sheet["A3"].value == "RAN"
    assert sheet.cell(sheet.max_row, 1).value == "Totaux"


def test_xlsx_export_of_an_empty_year_says_so(client, coop):
    response = client.get(f"{CAHIER}/export.xlsx")
    assert response.status_code == 302
    assert "Ce cahier est vide : il n'y a rien à exporter." in text(client.get(response.headers["Location"]))


# -- refunds, contra lines, balances ---------------------------------------------------------------


def test_a_supplier_credit_note_is_a_refund_received_on_the_charge_account(client, coop, db_check):
    book(db_check, coop.id, piece="D1", when=day(10, 1), bank=10000, splits=(("6068", 10000),), cheque="1")
    form = text(client.get(NEW, follow_redirects=True))
    assert "Remboursement reçu (avoir d'un fournisseur, trop-payé)" in form
    assert "Remboursement versé (à une famille, trop-perçu)" in form
    credit_note = expense(
        "jeton-avoir",
        piece="A1",
        label="Avoir papeterie",
        kind="refund_received",
        payment_mode="virement",
        cheque_number="",
        **{"bank_amount": "25,00", "splits-0-account": "6068", "splits-0-amount": "25,00"},
    )
    assert client.post(NEW, data=credit_note).status_code == 302
    entry = next(e for e in entries(db_check) if e.piece == "A1")
    assert entry.kind == "refund_received" and lines_of(entry) == {"512": 2500, "6068": -2500}
    page = text(client.get(CAHIER))
    row = re.search(rf'<tr id="op-{entry.id}".*?</tr>', page, re.S).group(0)
    assert "<td>-25,00</td>" in row  # a minus sign in the charge account's column (tests/test_cahier_view.py)
    edit = text(client.get(f"/coop/cahier/operation/{entry.id}/modifier"))
    assert re.search(r'<input checked[^>]*value="refund_received"', edit)
    assert 'value="25,00"' in edit


def test_a_refund_paid_to_a_family_and_a_contra_line(client, coop, db_check):
    set_opening(db_check, coop.id, bank=50000, cash=0)
    paid = expense(
        "jeton-trop-percu",
        piece="D2",
        label="Trop-perçu classe de mer",
        kind="refund_paid",
        **{"bank_amount": "40,00", "splits-0-account": "756", "splits-0-amount": "40,00"},
    )
    assert client.post(NEW, data=paid).status_code == 302
    net_sale = receipt(
        "jeton-net",
        piece="R2",
        cash_amount="",
        **{"bank_amount": "100,00", "splits-0-account": "707", "splits-0-amount": "120,00"},
        **{"splits-1-account": "708", "splits-1-amount": "-20,00"},
    )
    assert client.post(NEW, data=net_sale).status_code == 302
    wrong = dict(net_sale, form_token="jeton-faux", piece="R3", **{"splits-1-amount": "-10,00"})
    page = text(client.post(NEW, data=wrong))
    assert "reste à ventiler -10,00" in page
    found = {e.piece: lines_of(e) for e in entries(db_check)}
    assert found["D2"] == {"756": 4000, "512": -4000}
    assert found["R2"] == {"512": 10000, "707": -12000, "708": 2000}
    assert "R3" not in found


def test_a_cash_expense_larger_than_the_cash_box_is_refused_naming_the_date(client, coop, db_check):
    set_opening(db_check, coop.id, bank=0, cash=11470)
    data = expense(
        "jeton-caisse",
        payment_mode="especes",
        cheque_number="",
        bank_amount="",
        cash_amount="500,00",
        **{"splits-0-amount": "500,00"},
    )
    page = text(client.post(NEW, data=data))
    message = field_error(page, "cash_amount")
    assert f"La caisse serait négative le {day(10, 2).strftime('%d/%m/%Y')} (-385,30{NNBSP}€)" in message
    assert [e.kind for e in entries(db_check)] == ["opening"]


def test_a_negative_bank_is_allowed_with_a_warning_after_the_save_in_the_cahier_and_at_home(client, coop, db_check):
    response = client.post(NEW, data=expense(), follow_redirects=True)
    page = text(response)
    warning = f"Attention : le solde de la banque est négatif (-45,60{NNBSP}€)"
    assert "Opération 1 enregistrée." in page and warning in page
    assert warning in text(client.get(CAHIER))
    assert warning in text(client.get("/"))
    set_opening(db_check, coop.id, bank=10000, cash=0)
    assert "solde de la banque est négatif" not in text(client.get(CAHIER))
    assert "solde de la banque est négatif" not in text(client.get("/"))


def test_deleting_the_cash_that_was_spent_is_refused(client, coop, db_check):
    receipt_id = book(
        db_check, coop.id, piece="R1", when=day(9, 10), kind="receipt", cash=5000, splits=(("708", 5000),)
    )
    book(db_check, coop.id, piece="D1", when=day(9, 12), cash=3000, splits=(("6068", 3000),))
    response = client.post(f"/coop/cahier/operation/{receipt_id}/supprimer", data={}, follow_redirects=True)
    assert f"La caisse serait négative le {day(9, 12).strftime('%d/%m/%Y')}" in text(response)
    assert len(entries(db_check)) == 2


def test_import_with_refunds_from_the_web(client, coop, db_check):
    header = ";".join([*FIXED_COLUMNS, "6068", "756"])
    rows = [
        f"A1;{day(10, 3):%d/%m/%Y};Avoir;virement;;;;12,50;;;;;;-12,50;",
        f"A2;{day(10, 4):%d/%m/%Y};Trop-perçu;virement;;;;;8,00;;;;;;-8,00",
    ]
    content = ("\r\n".join([header, *rows]) + "\r\n").encode()
    response = client.post(
        f"{CAHIER}/import", data={"file": (io.BytesIO(content), "cahier.csv")}, content_type="multipart/form-data"
    )
    assert response.status_code == 302
    found = {e.piece: (e.kind, lines_of(e)) for e in entries(db_check)}
    assert found == {
        "A1": ("refund_received", {"512": 1250, "6068": -1250}),
        "A2": ("refund_paid", {"512": -800, "756": 800}),
    }
    exported = client.get(f"{CAHIER}/export.csv").get_data().decode("utf-8-sig")
    assert ";-12,50;" in exported and exported.rstrip().endswith(";-8,00")


# -- the classic view after a change (rows kept per operation version) ----------------------------


def _bank_line_id(db_check, entry_id: int) -> int:
    return db_check(
        lambda s: s.scalar(
            sa.select(EntryLine.id)
            .join(EntryLine.account)
            .where(EntryLine.entry_id == entry_id, sa.text("account.code = '512'"))
        )
    )


def test_the_classic_view_is_right_after_each_pointage_edit_and_deletion(client, year_of_entries, db_check):
    """Each operation's row is kept between views: pointing a line, undoing it, editing an entry through the
    domain, deleting one or renaming its action must each show at once, balances included."""
    ids = year_of_entries
    line = _bank_line_id(db_check, ids["receipt"])
    assert _row(text(client.get(CAHIER)), ids["receipt"])[13] == "non pointé"

    response = client.post(f"/coop/pointage/{YEAR}/ligne/{line}/pointer", data={"on": day(9, 30).isoformat()})
    assert response.status_code == 302
    assert _row(text(client.get(CAHIER)), ids["receipt"])[13] == day(9, 30).strftime("%d/%m/%Y")

    client.post(f"/coop/pointage/{YEAR}/ligne/{line}/depointer", data={"confirme": "oui"})
    assert _row(text(client.get(CAHIER)), ids["receipt"])[13] == "non pointé"

    # a line changed directly (no change to its entry's own columns) still refreshes the row
    def clear_directly(session):
        session.get(EntryLine, line).cleared_on = day(10, 1)
        session.commit()

    db_check(clear_directly)
    assert _row(text(client.get(CAHIER)), ids["receipt"])[13] == day(10, 1).strftime("%d/%m/%Y")

    def edit(session):
        entry = session.get(Entry, ids["expense"])
        data = books.EntryData(
            piece="D10",
            date=entry.date,
            label="Acompte car (corrigé)",
            payment_mode="cheque",
            cheque_number="0004567",
            kind="expense",
            treasury=books.Treasury(bank_out=200000),
            splits=[books.Split("6251", 200000)],
            action_id=entry.action_id,
        )
        books.update_entry(session, entry, data, by=None, expected_version=entry.version)
        session.commit()

    db_check(edit)
    page = text(client.get(CAHIER))
    assert _row(page, ids["expense"])[2] == "Acompte car (corrigé)"
    assert _row(page, ids["expense"])[5:8] == ["", f"2{NNBSP}000,00", "-645,44"]
    # the balances of the rows after it follow
    assert _row(page, ids["deposit"])[7] == "-615,44"

    client.post(f"/coop/cahier/operation/{ids['deposit']}/supprimer", data={})
    page = text(client.get(CAHIER))
    assert f'id="op-{ids["deposit"]}"' not in page
    assert _row(page, ids["advance"])[7] == "-645,44"

    def rename(session):
        session.get(Action, ids["action"]).name = "Voyage à la mer"
        session.commit()

    db_check(rename)
    assert _row(text(client.get(CAHIER)), ids["expense"])[4] == "Voyage à la mer"


def _exported(client) -> dict[str, list[str]]:
    response = client.get(f"{CAHIER}/export.csv")
    assert response.is_streamed  # sent in pieces, not built whole in memory first
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf") and body.endswith(b"\r\n")
    rows = csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=";")
    return {row[0]: row for row in rows}


def test_csv_export_follows_each_change_made_after_the_classic_view(client, year_of_entries, db_check):
    """The export reuses the figures the classic view keeps per operation: a pointage, an edit, a renamed
    action or a deletion made since the last view shows in the next export all the same."""
    ids = year_of_entries
    client.get(CAHIER)  # the view keeps each operation's figures
    assert _exported(client)["R1"][6] == ""
    line = _bank_line_id(db_check, ids["receipt"])
    client.post(f"/coop/pointage/{YEAR}/ligne/{line}/pointer", data={"on": day(9, 30).isoformat()})
    assert _exported(client)["R1"][6] == day(9, 30).strftime("%d/%m/%Y")

    def edit_and_rename(session):
        session.get(Entry, ids["expense"]).label = "=Acompte car corrigé"
        session.get(Action, ids["action"]).name = "Voyage à la mer"
        session.commit()

    db_check(edit_and_rename)
    client.get(CAHIER)
    row = _exported(client)["D10"]
    assert row[2] == "'=Acompte car corrigé"  # the formula guard still applies
    assert row[5] == "Voyage à la mer"
    client.post(f"/coop/cahier/operation/{ids['deposit']}/supprimer", data={})
    assert "D2" not in _exported(client)


def test_month_view_shows_one_month_with_the_balances_carried_from_before(client, year_of_entries):
    ids = year_of_entries
    month = day(10, 1)
    page = text(client.get(f"{CAHIER}?mois={month:%Y-%m}"))
    shown = {int(i) for i in re.findall(r'<tr id="op-(\d+)"', page)}
    assert shown == {ids["expense"], ids["deposit"]}
    assert "Solde reporté au 1er octobre" in page
    # the running balances stay those of the whole year
    assert _row(page, ids["deposit"])[7] == f"-1{NNBSP}115,44"
    # a month outside the year shows the whole year
    assert len(re.findall(r'<tr id="op-', text(client.get(f"{CAHIER}?mois={YEAR - 1}-10")))) == 5


# -- first year on the portal (issue 13 §6) ---------------------------------------------------------


def _opening_form(**fields) -> dict[str, str]:
    data = {"bank": "1 000,00", "cash": "20,00", "submit": "Enregistrer le report à nouveau"}
    for n in range(3):
        data.update({f"items-{n}-direction": "out", f"items-{n}-date": "", f"items-{n}-label": ""})
        data.update({f"items-{n}-cheque_number": "", f"items-{n}-amount": ""})
    data.update(fields)
    return data


def test_opening_step_lists_outstanding_cheques_and_deposits_without_javascript(client, coop, db_check):
    page = text(client.get(f"{CAHIER}/report"))
    assert "Chèques et remises en attente au 31 août" in page
    assert page.count('name="items-') == 15  # three blank rows of five fields
    # « Ajouter des lignes » re-renders with three more rows, keeping what was typed, recording nothing
    more = text(client.post(f"{CAHIER}/report", data={**_opening_form(), "more": "Ajouter des lignes"}))
    assert more.count('name="items-') == 30 and "1 000,00" in more
    assert db_check(lambda s: s.scalar(sa.select(sa.func.count(Entry.id)))) == 0
    # a row with a date inside the year is refused on the page, nothing recorded
    late = _opening_form(**{"items-0-date": f"02/09/{YEAR}", "items-0-label": "Tard", "items-0-amount": "10,00"})
    refused = text(client.post(f"{CAHIER}/report", data=late))
    assert f"d'avant le 01/09/{YEAR}" in refused
    # a row half filled is refused on its own fields
    half = text(client.post(f"{CAHIER}/report", data=_opening_form(**{"items-1-label": "Sans montant"})))
    assert "Indiquez un montant positif." in half
    ok = _opening_form(
        **{
            "items-0-date": f"20/08/{YEAR}",
            "items-0-label": "Librairie",
            "items-0-cheque_number": "0004321",
            "items-0-amount": "120,00",
            "items-2-direction": "in",
            "items-2-date": f"28/08/{YEAR}",
            "items-2-label": "Remise photos",
            "items-2-amount": "45,50",
        }
    )
    response = client.post(f"{CAHIER}/report", data=ok)
    assert response.status_code == 302
    cahier = text(client.get(CAHIER))
    assert "Librairie (du 20/08/" in cahier and "Remise photos (du 28/08/" in cahier
    assert f"1{NNBSP}000,00\u202f€" in cahier  # the bank balance typed, items included
    pointage = text(client.get(f"/coop/pointage/{YEAR}"))
    assert "Librairie (du 20/08/" in pointage and "0004321" in pointage
    # the step shows what was recorded, ready to change
    again = text(client.get(f"{CAHIER}/report"))
    assert 'value="Librairie"' in again and 'value="120,00"' in again and 'value="45,50"' in again
    assert 'value="1 000,00"' in again or f'value="1{NNBSP}000,00"' in again


def test_year_selector_offers_the_previous_school_year(client, coop):
    page = text(client.get(CAHIER))
    options = re.findall(r'<option value="(\d{4})"', page[page.index('id="year-select"') :])
    assert str(YEAR - 1) in options and str(YEAR) in options
    assert client.get(f"/coop/cahier/{YEAR - 1}").status_code == 200


# -- vouchers in the entry form, removal -------------------------------------------------------------


def test_new_entry_with_two_vouchers_stores_both_with_the_entry(client, coop, db_check, app):
    form = expense(
        vouchers=[(io.BytesIO(pdf_bytes("Facture 1")), "facture.pdf"), (io.BytesIO(png_bytes()), "ticket.png")]
    )
    page = text(client.get(NEW + "?jeton=" + "a" * 32))
    assert 'enctype="multipart/form-data"' in page and "multiple" in page and "Pièces justificatives" in page
    response = client.post(NEW, data=form, content_type="multipart/form-data")
    assert response.status_code == 302
    [entry] = entries(db_check)
    documents = _documents(db_check)
    assert [(d.entry_id, d.original_name) for d in documents] == [
        (entry.id, "facture.pdf"),
        (entry.id, "ticket.jpg"),
    ]  # a photo is re-encoded
    detail = text(client.get(f"/coop/cahier/operation/{entry.id}"))
    assert "facture.pdf" in detail and "ticket.jpg" in detail
    for document in documents:
        assert (Path(app.config["UPLOAD_DIR"]) / document.storage_key).exists()


def test_a_refused_voucher_records_neither_the_entry_nor_the_other_file(client, coop, db_check, app):
    before = set(os.listdir(app.config["UPLOAD_DIR"])) if os.path.isdir(app.config["UPLOAD_DIR"]) else set()
    form = expense(vouchers=[(io.BytesIO(pdf_bytes()), "facture.pdf"), (io.BytesIO(b"MZ not a pdf"), "virus.exe")])
    response = client.post(NEW, data=form, content_type="multipart/form-data")
    assert response.status_code == 200
    error = field_error(text(response), "vouchers")
    assert "« virus.exe »" in error and "Seuls les fichiers PDF, JPEG et PNG" in error
    assert "choisissez à nouveau vos fichiers" in error
    assert entries(db_check) == [] and _documents(db_check) == []
    after = set(os.listdir(app.config["UPLOAD_DIR"])) if os.path.isdir(app.config["UPLOAD_DIR"]) else set()
    assert after == before  # the accepted file written first did not outlive the rollback


def test_edit_form_adds_vouchers_to_the_entry(client, entry_id, db_check):
    page = text(client.get(f"/coop/cahier/operation/{entry_id}/modifier"))
    version = re.search(r'name="version"[^>]*value="(\d+)"', page) or re.search(
        r'value="(\d+)"[^>]*name="version"', page
    )
    form = expense(
        piece="1", cheque_number="1", version=version.group(1), vouchers=[(io.BytesIO(pdf_bytes()), "f.pdf")]
    )
    form["bank_amount"] = "45,60"
    form["splits-0-amount"] = "45,60"
    response = client.post(f"/coop/cahier/operation/{entry_id}/modifier", data=form, content_type="multipart/form-data")
    assert response.status_code == 302, field_error(text(response), "vouchers")
    assert [(d.entry_id, d.original_name) for d in _documents(db_check)] == [(entry_id, "f.pdf")]


def test_removing_a_voucher_asks_first_then_removes_it_audited(client, entry_id, db_check, app):
    upload(client, entry_id, pdf_bytes(), "devis.pdf")
    upload(client, entry_id, pdf_bytes("Facture"), "facture.pdf")
    devis, facture = _documents(db_check)
    detail = text(client.get(f"/coop/cahier/operation/{entry_id}"))
    assert f"/coop/cahier/justificatif/{devis.id}/supprimer" in detail
    confirm = client.get(f"/coop/cahier/justificatif/{devis.id}/supprimer")
    assert confirm.status_code == 200
    assert "Supprimer le justificatif « devis.pdf » ?" in text(confirm)
    assert len(_documents(db_check)) == 2  # nothing removed by looking at the question
    response = client.post(f"/coop/cahier/justificatif/{devis.id}/supprimer")
    assert response.status_code == 302 and response.headers["Location"] == f"/coop/cahier/operation/{entry_id}"
    assert "Justificatif « devis.pdf » supprimé." in text(client.get(response.headers["Location"]))
    assert [d.original_name for d in _documents(db_check)] == ["facture.pdf"]
    assert not (Path(app.config["UPLOAD_DIR"]) / devis.storage_key).exists()
    assert (Path(app.config["UPLOAD_DIR"]) / facture.storage_key).exists()
    event = db_check(lambda s: s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "document.removed")))
    assert event.entity_id == devis.id and event.actor_login == "085-001"


def test_a_closed_years_voucher_cannot_be_removed(client, entry_id, db_check, app):
    upload(client, entry_id, pdf_bytes(), "facture.pdf")
    [document] = _documents(db_check)
    db_check(lambda s: (s.execute(sa.update(Ledger).values(status="closed")), s.commit()))
    assert "/supprimer" not in text(client.get(f"/coop/cahier/operation/{entry_id}")).split("Pièces justificatives")[1]
    response = client.post(f"/coop/cahier/justificatif/{document.id}/supprimer")
    assert response.status_code == 302
    assert "est clôturé : ses justificatifs ne peuvent plus être supprimés." in text(
        client.get(response.headers["Location"])
    )
    assert len(_documents(db_check)) == 1
    assert (Path(app.config["UPLOAD_DIR"]) / document.storage_key).exists()


def test_another_coops_voucher_cannot_be_removed(client, coop, other_coop_data, db_check):
    response = client.post(f"/coop/cahier/justificatif/{other_coop_data['document']}/supprimer")
    assert response.status_code == 404
    assert len(_documents(db_check)) == 1
