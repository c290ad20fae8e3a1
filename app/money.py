"""Money as integer cents: parse French text once at the edge, format once for display."""

from __future__ import annotations

import re

from app.formats import amount as format_amount  # noqa: F401  (the one formatter, re-exported)

_AMOUNT = re.compile(r"^([+-]?)(\d{1,3}(?:[ \u00a0\u202f.]\d{3})+|\d+)(?:[,.](\d{1,2}))?$")


MAX_WHOLE_DIGITS = 12  # 999 999 999 999,99 €: far above any coop, far below the database's bigint
MAX_AMOUNT_CENTS = 10 ** (MAX_WHOLE_DIGITS + 2) - 1
_MAX_TEXT = 40  # longer text is refused before any pattern matching


def parse_amount(text: str) -> int:
    """'1 234,56' -> 123456 cents; accepts '1234.5', '-12', '12,30 €'. ValueError (French) otherwise.

    At most 12 digits before the comma and 2 after; no exponent, no 'Infinity' or 'NaN'.
    """
    shown = (text or "")[:_MAX_TEXT] + ("…" if len(text or "") > _MAX_TEXT else "")
    raw = (text or "").strip().replace("€", "").replace("EUR", "").strip()
    match = _AMOUNT.match(raw) if len(raw) <= _MAX_TEXT else None
    if not match:
        raise ValueError(f"« {shown} » n'est pas un montant (exemple : 1 234,56).")
    sign, whole, decimals = match.groups()
    whole = re.sub(r"[ \u00a0\u202f.]", "", whole)
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS:
        raise ValueError(f"Montant trop grand : {MAX_WHOLE_DIGITS} chiffres au plus avant la virgule.")
    cents = int(whole) * 100 + int((decimals or "0").ljust(2, "0"))
    return -cents if sign == "-" else cents


def parse_rate_ppm(text: str) -> int:
    """'0,00688' (euro per euro) -> 6880 millionths; at most 6 decimals."""
    raw = (text or "").strip().replace(",", ".")
    match = re.fullmatch(r"(\d{1,6})(?:\.(\d{1,6}))?", raw) if len(raw) <= _MAX_TEXT else None
    if not match:
        raise ValueError(f"« {(text or '')[:_MAX_TEXT]} » n'est pas un coefficient (exemple : 0,00688).")
    whole, decimals = match.groups()
    return int(whole) * 1_000_000 + int((decimals or "0").ljust(6, "0"))


def format_rate_ppm(ppm: int) -> str:
    """6880 -> '0,00688'."""
    whole, rest = divmod(ppm, 1_000_000)
    decimals = f"{rest:06d}".rstrip("0") or "0"
    return f"{whole},{decimals}"
