"""The matching kept between requests (`reconciliation.Matching`, used by the pointage page to match
again only what a change touched) gives exactly what `match` gives, in the same order, on years full
of repeated amounts, cheques, deposit slips and references, and after each change to either side."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from app import reconciliation as rec
from app.reconciliation import BankItem, BookLine
from app.statements import normalise_number

COMMON = [3500, 3500, 1000, 500, 4550, 12000]


def _year(seed: int, count: int) -> tuple[list[BankItem], list[BookLine]]:
    """A made-up year: cheques (some cashed with another amount), deposit slips of several lines,
    card payments twice the same day, direct debits with their reference, fees missing from the book."""
    rng = random.Random(seed)
    first = date(2025, 9, 1)
    bank: list[BankItem] = []
    book: list[BookLine] = []

    def amount() -> int:
        return rng.choice(COMMON) if rng.random() < 0.4 else rng.randrange(200, 9_000)

    def line(day, cents, mode, number="", label="Opération") -> None:
        ident = len(book) + 1
        book.append(BookLine(ident, ident, day, cents, mode, normalise_number(number), label, f"P{ident:04d}"))

    def item(day, cents, label, cheque="", reference="") -> None:
        bank.append(BankItem(len(bank) + 1, day, cents, label, normalise_number(cheque), reference))

    for number in range(count):
        day = first + timedelta(days=rng.randrange(300))
        kind = rng.choice(["cheque", "remise", "carte", "prelevement", "especes", "frais"])
        if kind == "cheque":
            cents, cheque = -amount(), f"{1000 + number:07d}"
            line(day, cents, "cheque", cheque, "Facture")
            if rng.random() < 0.9:
                cashed = cents if rng.random() < 0.9 else cents - 100  # an anomaly now and then
                item(day + timedelta(days=rng.randrange(-2, 30)), cashed, f"CHEQUE {cheque}", cheque=cheque)
        elif kind == "remise":
            slip = f"{4000 + number:07d}"
            parts = [rng.choice(COMMON[:3]) if rng.random() < 0.6 else amount() for _ in range(rng.randrange(1, 4))]
            for part in parts:
                line(day, part, "remise", slip, "Cotisation famille")
            item(day + timedelta(days=rng.randrange(1, 4)), sum(parts), f"REMISE CHEQUES {slip}")
        elif kind == "carte":
            cents = -amount()
            for _ in range(2 if rng.random() < 0.2 else 1):
                line(day, cents, "carte", label="Achat Super U")
                item(day + timedelta(days=rng.randrange(0, 4)), cents, "CB SUPER U AIZENAY")
        elif kind == "prelevement":
            reference = f"RUM{rng.randrange(10**6):06d}"
            line(day, -4550, "prelevement", label=f"Cotisation OCCE {reference}")
            item(day, -4550, "PRLV SEPA OCCE 85", reference=reference if rng.random() < 0.5 else "")
        elif kind == "especes":
            cents = amount()
            line(day, cents, "especes", label="Vente de gâteaux")
            item(day + timedelta(days=rng.randrange(0, 12)), cents, "VERSEMENT ESPECES")
        else:
            item(day, -rng.choice([600, 850]), "FRAIS TENUE DE COMPTE")
    rng.shuffle(bank)  # the result does not depend on the order of the inputs
    return bank, book


def _all(bank: list[BankItem], book: list[BookLine]) -> rec.Matching:
    matching = rec.Matching()
    matching.update([], list(bank), [], list(book))
    return matching


@pytest.mark.parametrize("seed", range(8))
def test_groups_give_what_the_whole_run_gives(seed):
    bank, book = _year(seed, 400)
    whole = rec.match(bank, book)
    assert {p.rule for p in whole.proposals} == {"R1", "R2", "R3", "R4"}  # every rule has its say
    assert whole.suggestions and whole.unmatched_bank and whole.anomalies
    assert _all(bank, book).result() == whole


def _change(rng: random.Random, bank: list[BankItem], book: list[BookLine]) -> tuple[str, list, list, list, list]:
    """One change to either side, as the page sees it (a changed item is gone and new)."""
    kind = rng.choice(["bank gone", "line gone", "line edited", "label edited", "bank added", "bank edited"])
    bank_gone, bank_new, book_gone, book_new = [], [], [], []
    if kind == "bank gone":
        bank_gone.append(bank.pop(rng.randrange(len(bank))).id)
    elif kind == "line gone":
        book_gone.append(book.pop(rng.randrange(len(book))).line_id)
    elif kind in ("line edited", "label edited"):
        index = rng.randrange(len(book))
        line = book[index]
        if kind == "line edited":
            book[index] = line._replace(amount=rng.choice(COMMON), date=line.date + timedelta(days=1))
        else:  # same amount and date: the same match, shown with its new label
            book[index] = line._replace(label=line.label + " corrigé")
        book_gone.append(line.line_id)
        book_new.append(book[index])
    elif kind == "bank edited":
        index = rng.randrange(len(bank))
        bank_gone.append(bank[index].id)
        bank[index] = bank[index]._replace(label=bank[index].label + " BIS")
        bank_new.append(bank[index])
    else:
        model = rng.choice(book)
        bank.append(BankItem(max(b.id for b in bank) + 1, model.date, model.amount, "VIR RECU", "", ""))
        bank_new.append(bank[-1])
    return kind, bank_gone, bank_new, book_gone, book_new


@pytest.mark.parametrize("seed", range(4))
def test_after_each_change_the_matching_kept_gives_what_a_whole_run_gives(seed):
    """Brought up to date change by change, the matching is the whole run's; and what it reports
    moved keeps a copy (the page's rendered rows) in step, every value showing a changed item among
    what came (its row shows what the item says)."""
    bank, book = _year(100 + seed, 300)
    rng = random.Random(seed)
    matching = _all(bank, book)
    copies = []
    for part in matching.parts:
        copy = rec.Ordered()
        copy.change([], list(zip(part.keys, part.values, strict=True)))
        copies.append(copy)
    for _ in range(60):
        kind, bank_gone, bank_new, book_gone, book_new = _change(rng, bank, book)
        moved = matching.update(bank_gone, bank_new, book_gone, book_new)
        assert matching.result() == rec.match(bank, book), kind
        changed_bank = {item.id for item in bank_new}
        changed_book = {line.line_id for line in book_new}
        for (dropped, added), copy, part in zip(moved, copies, matching.parts, strict=True):
            copy.change(dropped, added)
            assert (copy.keys, copy.values) == (part.keys, part.values), kind
            came = [value for _, value in added]
            for value in part.values:
                if isinstance(value, rec.Proposal) and (
                    value.bank_id in changed_bank or changed_book & set(value.line_ids)
                ):
                    assert value in came, kind
