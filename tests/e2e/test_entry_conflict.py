"""Two tabs edit the same operation in Chromium: the second save shows the saved values with its own beside,
each one taken back with one click, and the merge is saved only when the teacher submits again."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.models import Entry
from tests.e2e.conftest import axe_check
from tests.e2e.test_ledger_journey import SUBMIT, YEAR, _login
from tests.test_ledger_web import book, day

pytestmark = pytest.mark.e2e


def _saved(db_check) -> tuple[str, int, dict[str, int]]:
    def run(s):
        entry = s.scalars(sa.select(Entry)).one()
        return entry.label, entry.version, {line.account.code: line.amount_cents for line in entry.lines}

    return db_check(run)


def test_second_tab_merges_its_values_with_the_saved_ones(page, make_coop, db_check, console_errors):
    coop = make_coop(1)
    entry_id = book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    _login(page, "085-001")
    url = f"/coop/cahier/operation/{entry_id}/modifier"
    second = page.context.new_page()
    second.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    second.on("pageerror", lambda exc: console_errors.append(str(exc)))
    page.goto(url)
    second.goto(url)

    # The first tab saves a new label
    page.get_by_label("3. Libellé").fill("Premier onglet")
    page.get_by_role("button", name=SUBMIT).click()
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-{entry_id}$"))

    # The second tab changes the label, the amount and the split, then saves: nothing is overwritten
    second.get_by_label("3. Libellé").fill("Second onglet")
    second.get_by_label("Montant par la banque (€)").fill("50,00")
    second.get_by_label("Montant de la ligne 1", exact=True).fill("30,00")
    second.get_by_label("Compte de la ligne 2", exact=True).select_option("6068")
    second.get_by_label("Montant de la ligne 2", exact=True).fill("20,00")
    second.get_by_role("button", name=SUBMIT).click()
    summary = second.locator("#conflit")
    summary.wait_for()
    assert "modifiée dans un autre onglet ou par une autre personne" in summary.inner_text()
    expect(summary).to_be_focused()  # the script moves the focus once the page has loaded
    assert _saved(db_check) == ("Premier onglet", 2, {"6181": 4560, "512": -4560})
    label = second.get_by_label("3. Libellé")
    assert label.input_value() == "Premier onglet"
    assert second.locator("#label-conflit").inner_text() == "Votre saisie : Second onglet"
    assert "label-conflit" in label.get_attribute("aria-describedby")
    axe_check(second)

    # At 375 px the page does not scroll sideways
    second.set_viewport_size({"width": 375, "height": 667})
    assert second.evaluate("document.documentElement.scrollWidth") <= 375
    second.set_viewport_size({"width": 1280, "height": 900})

    # One click per box takes this tab's value back; the label and the split are kept, the amount follows
    second.get_by_role("button", name="Reprendre ma saisie pour « 3. Libellé »").click()
    assert label.input_value() == "Second onglet"
    expect(label).to_be_focused()
    second.get_by_role("button", name="Reprendre ma saisie pour « Montant par la banque (€) »").click()
    second.get_by_role("button", name="Reprendre ma saisie pour « 7. Ventilation »").click()
    assert second.get_by_label("Compte de la ligne 2", exact=True).input_value() == "6068"
    assert second.get_by_label("Montant de la ligne 2", exact=True).input_value() == "20,00"
    assert _saved(db_check)[0] == "Premier onglet"  # still nothing saved
    second.get_by_role("button", name=SUBMIT).click()
    second.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-{entry_id}$"))
    assert _saved(db_check) == ("Second onglet", 3, {"6181": 3000, "6068": 2000, "512": -5000})


def test_operation_deleted_in_the_other_tab_keeps_the_typed_values(page, make_coop, db_check, console_errors):
    coop = make_coop(1)
    entry_id = book(db_check, coop.id, piece="1", when=day(10, 2), bank=4560, splits=(("6181", 4560),), cheque="1")
    _login(page, "085-001")
    second = page.context.new_page()
    second.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    second.goto(f"/coop/cahier/operation/{entry_id}/modifier")
    page.goto(f"/coop/cahier/operation/{entry_id}/supprimer")
    page.get_by_role("button", name="Oui, supprimer l'opération 1").click()
    page.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}$"))

    second.get_by_label("3. Libellé").fill("Second onglet")
    second.get_by_role("button", name=SUBMIT).click()
    summary = second.locator("#conflit")
    summary.wait_for()
    assert "a été supprimée dans un autre onglet" in summary.inner_text()
    expect(summary).to_be_focused()  # the script moves the focus once the page has loaded
    assert "Second onglet" in second.locator(".typed-values").inner_text()
    axe_check(second)
    second.get_by_role("button", name="Créer une nouvelle opération avec ces valeurs").click()
    assert second.get_by_label("3. Libellé").input_value() == "Second onglet"
    assert db_check(lambda s: s.scalars(sa.select(Entry)).all()) == []  # shown, not saved yet
    second.get_by_role("button", name=SUBMIT).click()
    second.wait_for_url(re.compile(rf"/coop/cahier/{YEAR}#op-\d+$"))
    assert _saved(db_check) == ("Second onglet", 1, {"6181": 4560, "512": -4560})
