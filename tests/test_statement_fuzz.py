"""Every statement parser answers any input with its own French error, quickly (issue 12 §3).

Random and mutated versions of the sample statements (tests/data/statements/) are fed to each
parser: OFX, CAMT.053, QIF, each CSV preset and the manual column mapping. Whatever comes in, the
parser either returns a statement whose amounts stay within app.money's bounds, or raises
`StatementError` with a French message; never another exception, never an English message, and
each input is answered within Hypothesis' deadline (so `T1e400000` cannot cost 23 s again).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.money import MAX_AMOUNT_CENTS
from app.statements import (
    MAX_BYTES,
    MAX_LINES,
    PRESETS,
    CsvMapping,
    ParsedStatement,
    StatementError,
    parse_camt,
    parse_ofx,
    parse_qif,
    parse_statement,
    to_cents,
)

DATA = Path(__file__).parent / "data" / "statements"
FIXTURES = {
    "ofx": (DATA / "releve_2025-09_credit_mutuel.ofx").read_bytes(),
    "camt": (DATA / "releve_2025-09_camt.053.001.02.xml").read_bytes(),
    "qif": (DATA / "releve_2025-09.qif").read_bytes(),
    "csv_cm": (DATA / "releve_2025-09_credit_mutuel.csv").read_bytes(),
    "csv_ce": (DATA / "releve_2025-09_caisse_epargne.csv").read_bytes(),
    "cahier": (DATA / "cahier_comptes_coop_2025-09.csv").read_bytes(),
}

HOSTILE = [
    "Infinity",
    "-Infinity",
    "inf",
    "NaN",
    "sNaN",
    "-sNaN",
    "1e400000",
    "1E+400000",
    "1e-400000",
    "T1e400000",
    "9" * 25,
    "-" + "9" * 13 + ",00",
    "123456789012,99",
    "0.001",
    "1,2,3",
    "--5",
    "",
    " ",
    "2025-13-01",
    "20251301",
    "32/01/2025",
    "00/00/0000",
    "29/02/2025",
    "9999-12-31T99:99",
    "\x00",
    "\ufeff",
    "<",
    "&amp;",
    "&#0;",
    "]]>",
    '"',
    ";;;;",
    "\r",
    "é",
    "<STMTTRN>",
    "</STMTTRN>",
    "<TRNAMT>1e400000",
    "<DTPOSTED>20251399",
    "<Amt Ccy='EUR'>sNaN</Amt>",
    "<Dt></Dt>",
    "^",
    "!Type:Bank",
]

# Messages a Python or library error would show: none may reach the user.
ENGLISH = re.compile(r"\b(Error|Exception|invalid|literal|object|NoneType|Traceback|could not|not supported)\b")

FUZZ = settings(
    max_examples=120,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _check(parse, content) -> None:
    """`parse(content)` gives bounded amounts or a French StatementError, nothing else."""
    try:
        parsed = parse(content)
    except StatementError as exc:
        message = str(exc)
        assert message and len(message) < 1000
        assert not ENGLISH.search(message), message
        assert any(ch in message for ch in "éèàçêô«") or " " in message  # a French sentence, not a token
        return
    assert isinstance(parsed, ParsedStatement)
    assert len(parsed.lines) <= MAX_LINES
    for line in parsed.lines:
        assert abs(line.amount_cents) <= MAX_AMOUNT_CENTS
    if parsed.closing_balance_cents is not None:
        assert abs(parsed.closing_balance_cents) <= MAX_AMOUNT_CENTS


@st.composite
def mutated(draw, fixture: bytes) -> bytes:
    """A fixture with a few random edits: hostile tokens in place of numbers, dates or anywhere,
    random bytes, lines duplicated or dropped, a truncation."""
    content = fixture
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["number", "date", "insert", "bytes", "duplicate", "drop", "truncate"]))
        token = draw(st.sampled_from(HOSTILE)).encode("utf-8")
        if edit in ("number", "date"):
            pattern = rb"\d+[.,]\d\d" if edit == "number" else rb"\d{2}/\d{2}/\d{4}|\d{4}-\d{2}-\d{2}|\d{8}"
            spans = [m.span() for m in re.finditer(pattern, content)]
            if spans:
                start, end = draw(st.sampled_from(spans))
                content = content[:start] + token + content[end:]
        elif edit == "insert":
            at = draw(st.integers(0, len(content)))
            content = content[:at] + token + content[at:]
        elif edit == "bytes":
            at = draw(st.integers(0, len(content)))
            content = content[:at] + draw(st.binary(min_size=1, max_size=40)) + content[at + 5 :]
        else:
            lines = content.split(b"\n")
            index = draw(st.integers(0, len(lines) - 1))
            if edit == "duplicate":
                lines[index:index] = [lines[index]] * draw(st.integers(1, 30))
            elif edit == "drop":
                del lines[index]
            else:
                lines = lines[: index + 1]
                lines[-1] = lines[-1][: draw(st.integers(0, len(lines[-1])))]
            content = b"\n".join(lines)
    return content


@pytest.mark.parametrize("name", ["ofx", "camt", "qif", "csv_cm", "csv_ce"])
def test_the_sample_statements_still_parse(name):
    parsed = parse_statement(FIXTURES[name])
    assert len(parsed.lines) == 9
    assert sum(line.amount_cents for line in parsed.lines) == 61850


def test_the_sample_cash_book_parses_with_a_manual_mapping():
    mapping = CsvMapping(date=1, label=(2,), debit=7, credit=6)
    parsed = parse_statement(FIXTURES["cahier"], mapping=mapping, header_row=0)
    assert parsed.lines and all(line.amount_cents for line in parsed.lines)


@pytest.mark.parametrize("name", ["ofx", "camt", "qif", "csv_cm", "csv_ce"])
@FUZZ
@given(data=st.data())
def test_mutated_statements_give_only_french_errors(name, data):
    content = data.draw(mutated(FIXTURES[name]))
    _check(parse_statement, content)


@FUZZ
@given(content=mutated(FIXTURES["ofx"]))
def test_the_ofx_parser_alone(content):
    _check(parse_ofx, content)


@FUZZ
@given(content=mutated(FIXTURES["camt"]))
def test_the_camt_parser_alone(content):
    _check(parse_camt, content)


@FUZZ
@given(content=mutated(FIXTURES["qif"]))
def test_the_qif_parser_alone(content):
    _check(lambda raw: parse_qif(raw.decode("cp1252", errors="replace")), content)


@FUZZ
@given(content=mutated(FIXTURES["cahier"]), amount=st.booleans())
def test_the_manual_column_mapping(content, amount):
    mapping = (
        CsvMapping(date=1, label=(2, 3), amount=6)
        if amount
        else CsvMapping(date=1, label=(2,), debit=7, credit=6, value_date=1, reference=5)
    )
    _check(lambda raw: parse_statement(raw, mapping=mapping, header_row=0), content)


CELLS = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from(["01/09/2025", "2025-09-30", "12,50", "-35,00", "+245,00", "1 234,56", "CHEQUE 0001231"]),
    st.text(max_size=30),
)


@FUZZ
@given(preset=st.sampled_from(PRESETS), rows=st.lists(st.lists(CELLS, min_size=1, max_size=14), max_size=20))
def test_every_csv_preset(preset, rows):
    """A file with the header of each bank's preset and random cells under it."""
    header = [*preset.required, *(name for name in preset.label if name not in preset.required)]
    text = "\r\n".join(";".join(cell.replace(";", ",") for cell in row) for row in [header, *rows])
    _check(parse_statement, text.encode("utf-8"))


@FUZZ
@given(content=st.binary(max_size=4000))
def test_binary_garbage(content):
    _check(parse_statement, content)


@FUZZ
@given(
    head=st.sampled_from([b"OFXHEADER:100\n<OFX>", b"<?xml version='1.0'?><Document>", b"!Type:Bank\n", b""]),
    body=st.binary(max_size=3000),
)
def test_garbage_behind_each_format_header(head, body):
    _check(parse_statement, head + body)


@pytest.mark.parametrize(
    "content",
    [
        b"!Type:Bank\nD01/09/2025\nT1e400000\n^\n",
        b"!Type:Bank\nD01/09/2025\nTInfinity\n^\n",
        b"!Type:Bank\nD01/09/2025\nTsNaN\n^\n",
        b"!Type:Bank\nD01/09/2025\nT" + b"9" * 5000 + b"\n^\n",
        b"!Type:Bank\nD31/13/2025\nT12.00\n^\n",
        b"Date;Libelle;Montant\n01/09/2025;un seul champ;" + b"1" * (MAX_BYTES - 100) + b"\n",
        b"Date;Libelle;Montant\n" + b"01/09/2025;ligne;1,00\n" * (MAX_LINES + 1),
        b"!Type:Bank\n" + b"D01/09/2025\nT1.00\n^\n" * (MAX_LINES + 1),
        FIXTURES["camt"].replace(b"2025-09-02", b"2025-13-02"),
        FIXTURES["camt"].replace(b"<Dt>2025-09-02</Dt>", b"<Dt></Dt>"),
        FIXTURES["camt"].replace(b">120.00<", b">1E+400000<"),
        FIXTURES["ofx"].replace(b"<TRNAMT>-120.00", b"<TRNAMT>1e400000"),
        FIXTURES["ofx"].replace(b"<TRNAMT>-120.00", b"<TRNAMT>Infinity"),
        FIXTURES["ofx"].replace(b"<TRNAMT>-120.00", b"<TRNAMT>" + b"9" * 22),
        b"x" * (MAX_BYTES + 1),
    ],
    ids=[
        "qif-exponent",
        "qif-infinity",
        "qif-snan",
        "qif-5000-digits",
        "qif-month-13",
        "csv-5mb-field",
        "csv-too-many-lines",
        "qif-too-many-lines",
        "camt-month-13",
        "camt-empty-date",
        "camt-exponent",
        "ofx-exponent",
        "ofx-infinity",
        "ofx-22-digits",
        "over-5mb",
    ],
)
def test_the_inputs_of_the_issue_give_a_french_message(content):
    with pytest.raises(StatementError) as error:
        parse_statement(content)
    assert not ENGLISH.search(str(error.value))
    assert len(str(error.value)) < 300


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("-1 234,56", -123456),
        ("+245.00", 24500),
        ("1.234,56", 123456),
        ("1,234.56", 123456),
        ("12", 1200),
        (".5", 50),
        ("999999999999,99", 99999999999999),
    ],
)
def test_amounts_banks_write(text, cents):
    assert to_cents(text) == cents


@pytest.mark.parametrize("text", ["1e3", "Infinity", "NaN", "sNaN", "1000000000000,00", "1,234", "0,001", "-", ""])
def test_amounts_refused(text):
    with pytest.raises(StatementError):
        to_cents(text)
