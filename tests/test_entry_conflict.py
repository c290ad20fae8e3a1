"""Two tabs (or two people) edit the same operation: the second save never overwrites the first.

The second tab gets the edit form back with the saved values and the new version, and what it typed
beside each box that differs; nothing of it is lost, nothing is saved until it submits again. An
operation deleted meanwhile shows what was typed and offers a new operation filled with it.
"""

from __future__ import annotations

import html
import re

import pytest
from werkzeug.datastructures import MultiDict

from tests.test_ledger_web import _edit_form, book, day, entries, expense, lines_of, text


@pytest.fixture
def coop(make_coop, login_as):
    info = make_coop(1)
    login_as(info)
    return info


def edit_url(entry_id: int) -> str:
    return f"/coop/cahier/operation/{entry_id}/modifier"


def input_value(page: str, ident: str) -> str:
    tag = re.search(rf'<input[^>]*id="{ident}"[^>]*>', page).group(0)
    return html.unescape(re.search(r'value="([^"]*)"', tag).group(1)) if 'value="' in tag else ""


def typed_note(page: str, ident: str) -> str:
    """The « Votre saisie : … » note tied to a box, as text."""
    match = re.search(rf'<span id="{ident}-conflit">(.*?)</span>', page, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)) if match else ""


def hidden_fields(form_html: str) -> list[tuple[str, str]]:
    return [
        (n, html.unescape(v)) for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form_html)
    ]


def resume_form(page: str) -> MultiDict:
    """The fields « Reprendre toute ma saisie » posts (a form of its own, without JavaScript)."""
    section = re.search(r'<section[^>]*id="conflit".*?</section>', page, re.S).group(0)
    form_html = re.search(r"<form.*?</form>", section, re.S).group(0)
    return MultiDict([*hidden_fields(form_html), ("resume", "1")])


@pytest.fixture
def two_tabs(app, coop, login_as, db_check):
    """An operation, loaded in two tabs; the first tab saves a new label."""
    entry_id = book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    first = login_as(coop, on=app.test_client())
    second = login_as(coop, on=app.test_client())
    stale = {**_edit_form(second, entry_id), "cheque_number": "1"}
    saved = first.post(
        edit_url(entry_id), data={**_edit_form(first, entry_id), "cheque_number": "1", "label": "Premier onglet"}
    )
    assert saved.status_code == 302
    return entry_id, second, stale


SECOND_TAB = {
    "label": "Second onglet",
    "bank_amount": "50,00",
    "splits-0-amount": "30,00",
    "splits-1-account": "6068",
    "splits-1-amount": "20,00",
}


def test_second_tab_sees_saved_values_with_its_own_beside_and_nothing_is_overwritten(two_tabs, db_check):
    entry_id, second, stale = two_tabs
    response = second.post(edit_url(entry_id), data={**stale, **SECOND_TAB})
    page = text(response)
    assert response.status_code == 200
    assert "Cette opération a été modifiée dans un autre onglet ou par une autre personne" in page
    # the saved values are in the boxes, with the new version: a new submit is a knowing one
    assert input_value(page, "label") == "Premier onglet"
    assert input_value(page, "bank_amount") == "45,60" and input_value(page, "splits-0-amount") == "45,60"
    assert re.search(r'name="version" type="hidden" value="2"', page)
    # this tab's values beside the boxes that differ, tied to them for screen readers
    assert typed_note(page, "label") == "Votre saisie : Second onglet"
    assert typed_note(page, "bank_amount") == "Votre saisie : 50,00 €"
    assert "30,00 €" in typed_note(page, "splits") and "20,00 €" in typed_note(page, "splits")
    assert re.search(r'<input[^>]*aria-describedby="[^"]*label-conflit"[^>]*id="label"', page)
    assert re.search(r'<select[^>]*aria-describedby="splits-conflit"[^>]*id="splits-0-account"', page)
    assert typed_note(page, "piece") == "" and typed_note(page, "date") == ""  # the same in both: no note
    [entry] = entries(db_check)
    assert (entry.label, entry.version, lines_of(entry)) == ("Premier onglet", 2, {"6181": 4560, "512": -4560})


def test_after_merging_the_second_tab_saves_its_values(two_tabs, db_check):
    entry_id, second, stale = two_tabs
    page = text(second.post(edit_url(entry_id), data={**stale, **SECOND_TAB}))
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    # the user took back its label and amounts (what the « Reprendre » buttons do), then submits
    response = second.post(edit_url(entry_id), data={**stale, **SECOND_TAB, "version": version})
    assert response.status_code == 302
    [entry] = entries(db_check)
    assert (entry.label, entry.version) == ("Second onglet", 3)
    assert lines_of(entry) == {"6181": 3000, "6068": 2000, "512": -5000}


def test_take_back_everything_without_javascript(two_tabs, db_check):
    entry_id, second, stale = two_tabs
    page = text(second.post(edit_url(entry_id), data={**stale, **SECOND_TAB}))
    resumed = second.post(edit_url(entry_id), data=resume_form(page))
    page = text(resumed)
    assert resumed.status_code == 200 and "Votre saisie est remise dans le formulaire" in page
    assert input_value(page, "label") == "Second onglet" and input_value(page, "splits-1-amount") == "20,00"
    assert entries(db_check)[0].label == "Premier onglet"  # shown, not saved
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    assert version == "2"
    assert second.post(edit_url(entry_id), data={**stale, **SECOND_TAB, "version": version}).status_code == 302
    assert entries(db_check)[0].label == "Second onglet"


def test_same_values_typed_in_both_tabs_say_there_is_nothing_to_take_back(two_tabs, db_check):
    entry_id, second, stale = two_tabs
    page = text(second.post(edit_url(entry_id), data={**stale, "label": "Premier onglet"}))
    assert "il n'y a rien à reprendre" in page and "Votre saisie :" not in page


def test_operation_deleted_meanwhile_shows_the_typed_values_and_offers_a_new_operation(app, coop, login_as, db_check):
    entry_id = book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    first = login_as(coop, on=app.test_client())
    second = login_as(coop, on=app.test_client())
    stale = {**_edit_form(second, entry_id), "cheque_number": "1"}
    first.get(f"/coop/cahier/operation/{entry_id}/supprimer")
    assert first.post(f"/coop/cahier/operation/{entry_id}/supprimer").status_code == 302
    assert entries(db_check) == []
    response = second.post(edit_url(entry_id), data={**stale, **SECOND_TAB})
    page = text(response)
    assert response.status_code == 200
    assert "a été supprimée dans un autre onglet ou par une autre personne" in page
    assert "Second onglet" in page and "50,00 €" in page
    form_html = re.search(r'<form method="post" action="(/coop/cahier/\d+/nouvelle)".*?</form>', page, re.S)
    new_form = second.post(form_html.group(1), data=MultiDict([*hidden_fields(form_html.group(0)), ("resume", "1")]))
    page = text(new_form)
    assert new_form.status_code == 200 and entries(db_check) == []
    assert input_value(page, "label") == "Second onglet" and input_value(page, "splits-1-amount") == "20,00"
    token = re.search(r'name="form_token" type="hidden" value="([0-9a-f]{32})"', page).group(1)
    created = second.post(form_html.group(1), data={**expense(token), **SECOND_TAB, "cheque_number": "1"})
    assert created.status_code == 302
    [entry] = entries(db_check)
    assert entry.label == "Second onglet" and lines_of(entry) == {"6181": 3000, "6068": 2000, "512": -5000}


def test_another_coops_deleted_operation_stays_a_404(app, coop, make_coop, login_as, db_check):
    other = make_coop(2)
    entry_id = book(db_check, other.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    owner = login_as(other, on=app.test_client())
    owner.post(f"/coop/cahier/operation/{entry_id}/supprimer")
    intruder = login_as(coop, on=app.test_client())
    assert intruder.post(edit_url(entry_id), data=expense("", version="1")).status_code == 404


def test_a_piece_number_taken_meanwhile_is_not_shown_as_a_change_of_the_operation(
    app, coop, login_as, db_check, monkeypatch
):
    """A unique key lost to another save (piece number, action name) is said as such: no merge view."""
    import sqlalchemy as sa

    from app import ledger as books

    entry_id = book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    client = login_as(coop, on=app.test_client())
    form = {**_edit_form(client, entry_id), "cheque_number": "1", "label": "Nouveau libellé"}

    def taken(*args, **kwargs):
        raise sa.exc.IntegrityError("UPDATE entry", {}, Exception("uq_entry_ledger_piece"))

    monkeypatch.setattr(books, "update_entry", taken)
    page = text(client.post(edit_url(entry_id), data=form))
    assert "vient d'être utilisé ailleurs : changez-le, puis enregistrez à nouveau" in page
    assert 'id="conflit"' not in page and "Votre saisie" not in page
    assert input_value(page, "label") == "Nouveau libellé"  # what was typed stays in the form
    assert entries(db_check)[0].label != "Nouveau libellé"  # nothing saved
