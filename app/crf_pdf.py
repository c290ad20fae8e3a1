"""The CRF as a PDF: the summary from `templates/pdf/crf.html` (xhtml2pdf), the long listings the
CRF needs line by line (every bank line not cleared at 31 August, the inventory register) drawn
as annexes by `app.pdf_tables`, so the PDF costs the same whatever the number of operations of the
year, apart from those lines. The template refers to the annexes by the numbers `annexes` gives.
"""

from __future__ import annotations

from pathlib import Path

from app.crf import Crf
from app.formats import euros, fr_date
from app.pdf_tables import Column, Listing, render_with_listings

_UNCLEARED_COLUMNS = (
    Column("Date", 0.13),
    Column("Pièce", 0.11),
    Column("N° de chèque", 0.14),
    Column("Libellé", 0.44),
    Column("Montant", 0.18, numeric=True),
)
_INVENTORY_COLUMNS = (
    Column("Date", 0.13),
    Column("Pièce", 0.11),
    Column("Libellé", 0.58),
    Column("Montant", 0.18, numeric=True),
)


def annexes(crf: Crf) -> dict[str, int]:
    """The annexes the PDF of `crf` has, by subject ('outstanding', 'in_transit', 'inventory'), numbered."""
    subjects = (["outstanding", "in_transit"] if crf.reconciliation.uncleared else []) + (
        ["inventory"] if crf.inventory else []
    )
    return {subject: number for number, subject in enumerate(subjects, start=1)}


def footer(crf: Crf, issued_on: str) -> str:
    """The line at the bottom of every page, before the page number (short enough for one line: the
    coop's name is on top of the first page and of the annexes)."""
    code = f" · code de vérification {crf.verification.code}" if crf.verification else ""
    return f"Compte rendu financier {crf.year_label} · {crf.coop.login} · édité le {issued_on}{code}"


def _uncleared_rows(crf: Crf, lines) -> list[tuple[str, ...]]:
    return [
        (
            fr_date(line.date),
            line.piece,
            line.cheque,
            line.label if line.year_label == crf.year_label else f"{line.label} ({line.year_label})",
            euros(abs(line.amount)),
        )
        for line in lines
    ]


def listings(crf: Crf) -> list[Listing]:
    """The annexes of the CRF PDF, in the order of `annexes`."""
    end = fr_date(crf.ends_on)
    numbers = annexes(crf)
    found = []
    if "outstanding" in numbers:
        found.append(
            Listing(
                f"Annexe {numbers['outstanding']} — Chèques et paiements émis non débités au {end}",
                _UNCLEARED_COLUMNS,
                _uncleared_rows(crf, crf.outstanding_cheques),
                ("Total des chèques et paiements non débités", euros(crf.outstanding_cheques_total)),
            )
        )
        found.append(
            Listing(
                f"Annexe {numbers['in_transit']} — Remises et versements non crédités au {end}",
                _UNCLEARED_COLUMNS,
                _uncleared_rows(crf, crf.deposits_in_transit),
                ("Total des remises non créditées", euros(crf.deposits_in_transit_total)),
                note="Ces opérations ne doivent pas être saisies à nouveau l'année suivante : elles restent dans "
                f"le cahier {crf.year_label} et se pointeront sur les relevés suivants.",
            )
        )
    if "inventory" in numbers:
        found.append(
            Listing(
                f"Annexe {numbers['inventory']} — Registre d'inventaire : achats de biens durables de l'année "
                "(compte 68000008)",
                _INVENTORY_COLUMNS,
                [(fr_date(line.date), line.piece, line.label, euros(line.amount)) for line in crf.inventory],
                ("Total des biens durables", euros(crf.inventory_total)),
                note="Reportez chacun de ces achats au registre d'inventaire de la coopérative et marquez le "
                "matériel comme sa propriété.",
            )
        )
    return found


def render_crf_pdf(html: str, static_dir: str | Path, crf: Crf, issued_on: str) -> bytes:
    """The PDF of the CRF: `html` (templates/pdf/crf.html rendered with `annexes` and `footer`) and
    its annexes."""
    return render_with_listings(
        html,
        static_dir,
        listings(crf),
        heading=f"Annexes du compte rendu financier {crf.year_label}",
        subtitle=f"{crf.coop.name} (coopérative {crf.coop.login}) · exercice du {fr_date(crf.starts_on)} "
        f"au {fr_date(crf.ends_on)}",
        footer=footer(crf, issued_on),
    )
