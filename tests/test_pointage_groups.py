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


def _book_line(rng: random.Random, ident: int, near: BankItem | None) -> BookLine:
    """A cash-book line, often close to a bank line (its amount, a few days apart), with a cheque or slip
    number drawn from a few shared ones."""
    day = near.date + timedelta(days=rng.randrange(-5, 6)) if near else date(2025, 9, 1) + timedelta(rng.randrange(300))
    cents = near.amount if near and rng.random() < 0.7 else rng.choice([*COMMON, -3500, -4550, 7000])
    mode = rng.choice(["cheque", "remise", "carte", "prelevement", "virement", "especes"])
    number = ""
    if mode in ("cheque", "remise"):
        number = normalise_number(rng.choice([f"{1000 + rng.randrange(6):07d}", f"{4000 + rng.randrange(6):07d}"]))
    label = rng.choice(["Facture", "Achat", "Cotisation OCCE RUM123456", f"Cotisation OCCE RUM{rng.randrange(99):06d}"])
    return BookLine(ident, ident, day, cents, mode, number, label, f"X{ident}")


def _bank_item(rng: random.Random, ident: int, near: BookLine | None) -> BankItem:
    """A statement line, often close to a cash-book line, sometimes carrying its cheque number, its deposit
    slip or a direct debit's reference."""
    day = near.date + timedelta(days=rng.randrange(-3, 8)) if near else date(2025, 9, 1) + timedelta(rng.randrange(300))
    cents = near.amount if near and rng.random() < 0.7 else rng.choice([*COMMON, -3500, -4550, 7000])
    label, cheque, reference = rng.choice(["VIR", "CB SUPER U", "PRLV OCCE"]), "", ""
    draw = rng.random()
    if draw < 0.25 and near and near.number:
        if near.mode == "cheque":
            cheque = near.number
        elif near.mode == "remise":
            label = f"REMISE CHEQUES {near.number}"
    elif draw < 0.4:
        reference = rng.choice(["RUM123456", f"RUM{rng.randrange(99):06d}"])
    return BankItem(ident, day, cents, label, cheque, reference)


@pytest.mark.parametrize("seed", range(8))
def test_batches_of_changes_to_linking_numbers_give_what_a_whole_run_gives(seed):
    """Several changes at once (as between two views of the page), on either side: lines gone and brought
    back, cheque numbers, deposit slips and references edited, new linked lines on both sides."""
    rng = random.Random(seed)
    bank_list, book_list = _year(200 + seed, 30)
    bank = {item.id: item for item in bank_list}
    book = {line.line_id: line for line in book_list}
    matching = _all(bank_list, book_list)
    removed: dict[int, BookLine] = {}
    next_bank, next_line = max(bank) + 1, max(book) + 1
    for step in range(120):
        bank_gone, bank_new, book_gone, book_new = set(), {}, set(), {}
        for _ in range(rng.randrange(1, 8)):
            draw = rng.random()
            if draw < 0.15 and bank:
                ident = rng.choice(sorted(bank))
                if ident not in bank_new:
                    bank_gone.add(ident)
                    del bank[ident]
            elif draw < 0.3 and book:
                ident = rng.choice(sorted(book))
                if ident not in book_new:
                    book_gone.add(ident)
                    removed[ident] = book.pop(ident)
            elif draw < 0.4 and removed:  # a line back (an operation deleted, then restored by hand)
                ident = rng.choice(sorted(removed))
                book[ident] = book_new[ident] = removed.pop(ident)
            elif draw < 0.55 and book:  # its number, slip, mode, amount or date edited
                ident = rng.choice(sorted(book))
                near = rng.choice(list(bank.values())) if bank and rng.random() < 0.5 else None
                if ident not in book_new:
                    book_gone.add(ident)
                book[ident] = book_new[ident] = _book_line(rng, ident, near)
            elif draw < 0.7 and bank:
                ident = rng.choice(sorted(bank))
                near = rng.choice(list(book.values())) if book and rng.random() < 0.7 else None
                if ident not in bank_new:
                    bank_gone.add(ident)
                bank[ident] = bank_new[ident] = _bank_item(rng, ident, near)
            elif draw < 0.85:
                near = rng.choice(list(book.values())) if book and rng.random() < 0.8 else None
                bank[next_bank] = bank_new[next_bank] = _bank_item(rng, next_bank, near)
                next_bank += 1
            else:
                near = rng.choice(list(bank.values())) if bank and rng.random() < 0.8 else None
                book[next_line] = book_new[next_line] = _book_line(rng, next_line, near)
                next_line += 1
        matching.update(sorted(bank_gone), list(bank_new.values()), sorted(book_gone), list(book_new.values()))
        assert matching.result() == rec.match(list(bank.values()), list(book.values())), step


def test_dropping_a_key_that_is_not_there_fails_rather_than_dropping_its_neighbour():
    rows = rec.Ordered()
    rows.change([], [((1,), "janvier"), ((3,), "mars")])
    with pytest.raises(KeyError):
        rows.change([(2,)], [])
    assert rows.values == ["janvier", "mars"]
