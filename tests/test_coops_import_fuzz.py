"""The coop list import answers any file with its French errors, never a crash (issue 12 §3)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.coops import IMPORT_COLUMNS, MAX_IMPORT_LINES, parse_coops_csv
from app.errors import ValidationErrors

HEADER = ";".join(IMPORT_COLUMNS)
VALID_ROW = "12;Coopérative des Dunes;École des Dunes;0850001P;3 rue des Dunes;85160;Saint-Jean-de-Monts;"
VALID_ROW += "ce.0850001p@ac-nantes.fr;0251000000;Crédit Mutuel;FR7615519000010002000000103;CMCIFR2A"
VALID = f"{HEADER}\r\n{VALID_ROW}\r\n".encode()
FAST = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _answer(content: bytes) -> None:
    """Parsed rows with sane values, or the import's own French errors: nothing else."""
    try:
        rows = parse_coops_csv(content)
    except ValidationErrors as exc:
        assert exc.errors and all(isinstance(m, str) and m for messages in exc.errors.values() for m in messages)
        return
    for _line, number, fields in rows:
        assert 1 <= number <= 9999 and fields["name"]


def test_the_valid_file_parses():
    ((line, number, fields),) = parse_coops_csv(VALID)
    assert (line, number, fields["uai"]) == (2, 12, "0850001P")


@FAST
@given(st.binary(max_size=4096))
def test_random_bytes(content):
    _answer(content)


@FAST
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.binary(min_size=1, max_size=40))
def test_mutated_valid_file(position, noise):
    _answer(VALID[:position] + noise + VALID[position + len(noise) :])


@FAST
@given(st.lists(st.text(max_size=60), min_size=len(IMPORT_COLUMNS), max_size=len(IMPORT_COLUMNS)))
def test_random_cells(cells):
    _answer(f"{HEADER}\n{';'.join(c.replace(';', ',') for c in cells)}\n".encode())


@pytest.mark.parametrize(
    "row",
    [
        "1" + "0" * 30 + VALID_ROW[2:],  # a huge number
        "12;" + "x" * 5_000_000 + VALID_ROW[2:],  # one giant cell
        VALID_ROW.replace("Coopérative des Dunes", "Coop\r\nBcc: x@example.org"),
        "85-12;Coop" + VALID_ROW[2:],
    ],
)
def test_hostile_rows_get_french_errors(row):
    with pytest.raises(ValidationErrors):
        parse_coops_csv(f"{HEADER}\n{row}\n".encode())


def test_a_line_break_in_a_name_is_refused():
    row = VALID_ROW.replace("Coopérative des Dunes", '"Coop\nBcc: x@example.org"')
    with pytest.raises(ValidationErrors, match="retour à la ligne interdits"):
        parse_coops_csv(f"{HEADER}\n{row}\n".encode())


def test_too_many_lines():
    content = (HEADER + "\n" + "\n".join(f"{n};Coop {n}" + ";" * 10 for n in range(1, MAX_IMPORT_LINES + 3))).encode()
    with pytest.raises(ValidationErrors, match="coopératives au plus"):
        parse_coops_csv(content)
