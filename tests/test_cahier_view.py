"""The classic view's markup: cells captioned by their column on a phone, the paperclip of vouchers.

The fixtures and helpers of the cash-book's web tests are reused (tests/test_ledger_web.py)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.models import Document, Entry
from tests import test_ledger_web as web
from tests.test_ledger_web import CAHIER, YEAR, pdf_bytes, png_bytes, text, upload

# the fixtures of the cash-book's web tests, used here by name
coop = web.coop
entry_id = web.entry_id
year_of_entries = web.year_of_entries


def _row_html(page: str, entry_id: int) -> str:
    match = re.search(rf'<tr id="op-{entry_id}"[^>]*>.*?</tr>', page, re.S)
    assert match, entry_id
    return match.group(0)


def _cells(row: str) -> list[str]:
    return re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)


def test_on_a_phone_each_cell_is_captioned_by_its_column(client, year_of_entries):
    page = text(client.get(CAHIER))
    cells = _cells(_row_html(page, year_of_entries["expense"]))
    assert cells[1] == "03/10/" + cells[1][6:] and cells[6] == "2\u202f500,00"  # date, bank out: bare cells
    stylesheet = client.get("/static/css/cahier.css")
    css = stylesheet.get_data(as_text=True)
    stylesheet.close()
    for position, caption in ((2, "Date"), (7, "Banque sortie"), (8, "Solde banque"), (14, "Pointé le")):
        assert f'table.cahier tbody td:nth-child({position})::before {{ content: "{caption}"; }}' in css
    # the account columns' captions: the page's own style, one rule per header column, in the same order
    header = re.findall(r'<th scope="col" rowspan="2" class="text-end account-col" title="[^"]*">(\d+)<br>', page)
    style = re.search(r"<style>@media \(max-width:767.98px\)\{(.*?)\}</style>", page).group(1)
    rules = dict(re.findall(r'td:nth-child\((\d+)\)::before\{content:"([^"]*)"\}', style))
    assert [rules[str(15 + i)].split(" ")[0] for i in range(len(header))] == header
    assert rules[str(15 + header.index("62510008"))].startswith("62510008 ")
    assert cells[15 + header.index("62510008") - 1] == "2\u202f500,00"  # under its own account's caption
    assert len(cells) == 14 + len(header) + 1  # fixed columns, accounts, actions


def test_account_captions_cannot_end_the_style_element():
    from app.cahier import AccountColumn
    from app.views.cahier_table import phone_captions

    style = phone_captions([AccountColumn("6068", "6068", 'Achats</style><script>alert("x")</script>', "expense")])
    assert "</style>" not in style[:-8] and "<script>" not in style and '"x"' not in style
    assert style.endswith("</style>") and "Achats\\3c " in style


def test_the_paperclip_counts_the_vouchers_of_an_operation(client, entry_id, db_check):
    assert 'class="vouchers"' not in _row_html(text(client.get(CAHIER)), entry_id)  # the page is now cached
    version = db_check(lambda s: s.get(Entry, entry_id).version)
    assert upload(client, entry_id, pdf_bytes(), "facture.pdf").status_code == 302
    assert upload(client, entry_id, png_bytes(), "ticket.png").status_code == 302
    row = _row_html(text(client.get(CAHIER)), entry_id)
    assert '<span class="vouchers" title="2 justificatifs">2<span class="visually-hidden"> justificatifs</span>' in row
    assert db_check(lambda s: s.get(Entry, entry_id).version) == version + 2  # each file is a change of the entry
    first = db_check(lambda s: s.scalars(sa.select(Document.id).order_by(Document.id)).first())
    assert client.post(f"/coop/cahier/justificatif/{first}/supprimer").status_code == 302
    row = _row_html(text(client.get(CAHIER)), entry_id)
    assert 'title="1 justificatif">1<span class="visually-hidden"> justificatif</span>' in row


def test_odd_addresses_of_the_classic_view_give_the_page_never_an_error(client, year_of_entries):
    """Parameters typed or pasted by hand: an impossible month, a foreign action, a huge search..."""
    for query in (
        f"?mois={YEAR}-13",
        f"?mois={YEAR}-00",
        "?mois=9999-99",
        "?mois=abc",
        "?action=abc",
        "?action=99999999999999999999",
        "?action=-1",
        "?tri=<script>",
        "?q=" + "é" * 5000,
        "?compte=%00",
        "?q=%25%25&mode=cheque",
        f"?impression=1&tri=piece&mois={YEAR}-13",
    ):
        response = client.get(CAHIER + query)
        assert response.status_code == 200, query
        assert b"<script>" not in response.get_data(), query  # the page's own scripts all have attributes


def test_what_a_mandataire_typed_is_shown_as_text_in_every_view(client, coop, db_check):
    """A label, piece, cheque number or action name holding markup is escaped in the rows of the whole
    year's view, its print version and a filtered view (each renders rows its own way)."""
    web.set_opening(db_check, coop.id, 100000, 0)
    trip = web.make_action(db_check, coop.id, '<b onmouseover="x">Sortie</b> & « goûter »')
    entry = web.book(
        db_check,
        coop.id,
        piece="<i>P1</i>",
        when=web.day(10, 3),
        label="<script>alert(\"x\")</script> & 'ok'",
        bank=1500,
        splits=(("6068", 1500),),
        mode="cheque",
        cheque='12"3<4>',
        action_id=trip,
    )
    for query in ("", "?impression=1", "?q=alert"):
        row = _row_html(client.get(CAHIER + query).get_data(as_text=True), entry)
        assert "<script>" not in row and "<b " not in row and "<i>" not in row and '12"3' not in row, query
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;ok&#x27;" in row, query
        assert "&lt;i&gt;P1&lt;/i&gt;" in row and "12&quot;3&lt;4&gt;" in row, query
        assert "&lt;b onmouseover=&quot;x&quot;&gt;Sortie&lt;/b&gt; &amp; « goûter »" in row, query
