"""Imports that can take a few seconds say so: once sent, the button is disabled (no second import)
and a progress bar with a message appears, announced to screen readers (issue 12 §5)."""

from __future__ import annotations

import pytest

from tests.conftest import DEFAULT_MOMENT
from tests.e2e.conftest import axe_check, axe_on_every_page
from tests.helpers import browser_log_in

pytestmark = pytest.mark.e2e


def test_the_cahier_import_shows_its_progress_and_cannot_be_sent_twice(page, make_coop, clock, tmp_path):
    make_coop(1)
    axe_on_every_page(page)
    browser_log_in(page, "085-001")
    page.goto(f"/coop/cahier/{DEFAULT_MOMENT.year}/import")
    csv = tmp_path / "cahier.csv"
    csv.write_text("piece;date\n", encoding="utf-8")
    page.locator("input[type=file]").set_input_files(str(csv))
    # Keep the page where it is, to look at it after the submit (the real import would navigate away).
    page.evaluate("document.querySelector('form[data-busy]').addEventListener('submit', e => e.preventDefault())")
    page.locator("form[data-busy] [type=submit]").click()
    status = page.get_by_role("status").filter(has_text="Import en cours")
    assert status.is_visible()
    assert page.locator("form[data-busy] progress").count() == 1
    axe_check(page)  # the progress bar and its message
    page.wait_for_function("document.querySelector('form[data-busy] [type=submit]').disabled")
