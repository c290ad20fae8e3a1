"""The cash count (arrêté de caisse): the physical content of the cash box at 31 August.

A number per denomination (notes 500 € to 5 €, coins 2 € to 1 cent), or one total for a year
brought from another tool. Plain data, no database: closing checks it against the cash balance
and stores it with the year's figures (`app.crf`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from app.errors import DomainError

# Denominations of the cash count, in cents: notes 500 € to 5 €, then coins 2 € to 1 cent.
NOTES = (50000, 20000, 10000, 5000, 2000, 1000, 500)
COINS = (200, 100, 50, 20, 10, 5, 2, 1)
DENOMINATIONS = NOTES + COINS
MAX_PIECES = 100_000  # per denomination: catches a typing slip, never a real cash box
_DETAIL_ITEM = re.compile(r"(\d{1,3}(?:\.\d{1,2})?)\s*[x×]\s*(\d{1,6})", re.IGNORECASE)


def denomination_label(cents: int) -> str:
    """50000 -> '500 €', 200 -> '2 €', 50 -> '50 centimes', 1 -> '1 centime'."""
    if cents >= 100:
        return f"{cents // 100} €"
    return f"{cents} centime" + ("s" if cents > 1 else "")


@dataclass(frozen=True)
class CashCount:
    """The physical content of the cash box: a number per denomination, or one total (migration)."""

    total: int
    counts: tuple[tuple[int, int], ...] | None = None  # (denomination in cents, number), all denominations

    @classmethod
    def from_counts(cls, counts: dict[int, int]) -> CashCount:
        """Build from {denomination: number}; raises DomainError for an unknown or negative count."""
        unknown = set(counts) - set(DENOMINATIONS)
        if unknown:
            raise DomainError(f"Coupure inconnue : {sorted(unknown)}.", field="cash_count")
        for value, number in counts.items():
            if not isinstance(number, int) or not 0 <= number <= MAX_PIECES:
                raise DomainError(
                    f"Le nombre de {denomination_label(value)} doit être un nombre entier entre 0 et {MAX_PIECES}.",
                    field=f"d{value}",
                )
        full = tuple((value, counts.get(value, 0)) for value in DENOMINATIONS)
        return cls(total=sum(value * number for value, number in full), counts=full)

    @classmethod
    def from_total(cls, total: int) -> CashCount:
        if total < 0:
            raise DomainError("Une caisse ne peut pas être négative.", field="cash_count")
        return cls(total=total)

    @classmethod
    def parse(cls, text: str, parse_total: Any) -> CashCount:
        """A cash count typed on one line: a detail « 20x2,10x1,0.5x4 » (denomination in euros, a
        dot for cents, × or x, then the number) or one total read by `parse_total` (« 50,00 »).

        Raises DomainError (field ``cash_count``) for an unknown denomination or a malformed item."""
        text = (text or "").strip()
        if not re.search(r"[x×]", text, re.IGNORECASE):
            return cls.from_total(parse_total(text))
        counts: dict[int, int] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            match = _DETAIL_ITEM.fullmatch(item)
            if match is None:
                raise DomainError(
                    f"« {item} » n'est pas une coupure suivie d'un nombre "
                    "(par exemple 20x2 pour deux billets de 20 €).",
                    field="cash_count",
                )
            try:
                value = Decimal(match.group(1)) * 100
            except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
                value = Decimal(-1)
            if value != value.to_integral_value() or int(value) not in DENOMINATIONS:
                raise DomainError(
                    f"« {match.group(1)} » n'est pas une coupure en euros (500, 200, 100, 50, 20, 10, 5, 2, 1, "
                    "0.5, 0.2, 0.1, 0.05, 0.02, 0.01).",
                    field="cash_count",
                )
            counts[int(value)] = counts.get(int(value), 0) + int(match.group(2))
        if not counts:
            raise DomainError("Indiquez au moins une coupure (par exemple 20x2,10x1).", field="cash_count")
        return cls.from_counts(counts)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> CashCount | None:
        if not data:
            return None
        counts = data.get("counts")
        if counts:
            return cls.from_counts({int(value): int(number) for value, number in counts.items()})
        return cls.from_total(int(data["total"]))

    def to_public_json(self) -> dict[str, Any]:
        """The CRF's `cash_count`: the total and the number of each denomination counted (none for a total)."""
        return {
            "total": self.total,
            "counts": {str(value): number for value, number, _ in self.lines} if self.counts else None,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "counts": {str(value): number for value, number in self.counts} if self.counts else None,
        }

    @property
    def lines(self) -> list[tuple[int, int, int]]:
        """(denomination, number, subtotal) for every denomination counted (none for a single total)."""
        return [(value, number, value * number) for value, number in self.counts or () if number]

    def number_of(self, value: int) -> int:
        return dict(self.counts or ()).get(value, 0)


@dataclass(frozen=True)
class CountRow:
    """One row of the cash-count table: a denomination, the number typed and its subtotal.

    `group` names the group the row opens (« Billets », « Pièces »), else is empty; `subtotal` is
    None when the number typed is not a whole number (the page then shows nothing).
    """

    value: int
    label: str
    group: str
    subtotal: int | None


def count_rows(numbers: Mapping[int, object]) -> list[CountRow]:
    """The cash-count table for the numbers typed so far, one row per denomination (notes first)."""
    rows = []
    for value in DENOMINATIONS:
        number = numbers.get(value) or 0
        whole = isinstance(number, int) and not isinstance(number, bool)
        group = "Billets" if value == NOTES[0] else "Pièces" if value == COINS[0] else ""
        rows.append(CountRow(value, denomination_label(value), group, value * number if whole else None))
    return rows
