"""Bank statement parsers: OFX, CAMT.053, QIF and bank CSV exports, into one canonical form.

Every parser returns a `ParsedStatement` whose lines carry signed integer cents from the coop's
point of view (money in > 0), the booking date, a label, an optional cheque number and reference,
the bank's own id when it gives one (OFX FITID, CAMT AcctSvcrRef), and the account the file names.
Which lines are new is decided at import (`reconciliation.import_statement`), whatever the format.

Any input ends in a statement or in `StatementError` with a French message: amounts are bounded as in
`app.money` (12 digits before the comma, no exponent, no Infinity or NaN) and checked before any
arithmetic, files are capped at `MAX_BYTES` and `MAX_LINES` operations (tests/test_statement_fuzz.py).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from app.money import MAX_WHOLE_DIGITS

MAX_BYTES = 5 * 1024 * 1024  # a year of a busy coop is a few hundred kilobytes
MAX_LINES = 20_000  # operations in one file: far above a coop's year
_SHOWN = 40  # characters of a faulty value repeated in a message
TOO_MANY_LINES = (
    f"Ce relevé compte plus de {MAX_LINES:,} opérations : importez-le en plusieurs fois "
    "(un trimestre ou une année par fichier)."
).replace(",", "\u202f")
TOO_BIG = f"Ce fichier est trop volumineux pour un relevé ({MAX_BYTES // (1024 * 1024)} Mo au plus)."


class StatementError(ValueError):
    """The file is not a statement this module can read (French message for the user)."""


class NeedsMapping(StatementError):
    """A CSV whose layout is not one of the presets: the user must say which column is which."""

    def __init__(self, columns: list[str], sample: list[list[str]]) -> None:
        super().__init__("Ce fichier CSV n'a pas une mise en page connue : indiquez quelle colonne contient quoi.")
        self.columns = columns
        self.sample = sample


@dataclass
class BankLine:
    date: date
    amount_cents: int
    label: str
    value_date: date | None = None
    cheque_number: str = ""
    reference: str = ""
    bank_id: str = ""  # FITID / AcctSvcrRef
    raw: str = ""


@dataclass
class ParsedStatement:
    source_format: str
    lines: list[BankLine]
    account: str = ""
    closing_balance_cents: int | None = None
    closing_balance_date: date | None = None
    start_date: date | None = None
    end_date: date | None = None
    details: dict = field(default_factory=dict)


# -- helpers -------------------------------------------------------------------------------------


def decode(content: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252 (never Latin-1 first: it always "succeeds")."""
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return content.decode("cp1252")
        except UnicodeDecodeError:
            raise StatementError(
                "Le fichier n'est ni en UTF-8 ni en Windows-1252 : ce n'est pas un relevé lisible."
            ) from None


def fold(text: str) -> str:
    """Upper case, no accents, single spaces: for comparing labels and headers."""
    text = text or ""
    if text.isascii():  # most bank labels: nothing to decompose (hot in matching)
        return " ".join(text.upper().split())
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper().split())


def _shown(text: object) -> str:
    """The start of a faulty value, for a message (a 5 MB cell is not repeated to the user)."""
    value = str(text or "")
    return value[:_SHOWN] + ("…" if len(value) > _SHOWN else "")


_PLAIN_AMOUNT = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")
_CENT = Decimal("0.01")


def _bounded(sign: str, whole: str, decimals: str, text: object) -> int:
    """Signed cents from the digits of an amount, within app.money's bounds (StatementError otherwise)."""
    whole, decimals = whole.lstrip("0"), decimals.rstrip("0")
    if len(whole) > MAX_WHOLE_DIGITS:
        raise StatementError(
            f"« {_shown(text)} » : montant trop grand ({MAX_WHOLE_DIGITS} chiffres au plus avant la virgule)."
        )
    if len(decimals) > 2:
        raise StatementError(f"« {_shown(text)} » a plus de deux décimales.")
    cents = int(whole or "0") * 100 + int(decimals.ljust(2, "0"))
    return -cents if sign == "-" else cents


def to_cents(text: str | Decimal) -> int:
    """'-1 234,56', '+245.00', '1.234,56', '1,234.56' -> signed cents, at most 12 digits before the
    comma and two after. StatementError (French) for anything else: exponent, Infinity, NaN, text.

    Decimals (from ofxtools) are checked before any arithmetic: 1E+400000 must cost nothing."""
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise StatementError(f"« {_shown(text)} » n'est pas un montant.")
        if text.adjusted() >= MAX_WHOLE_DIGITS:
            raise StatementError(
                f"« {_shown(text)} » : montant trop grand ({MAX_WHOLE_DIGITS} chiffres au plus avant la virgule)."
            )
        if text.adjusted() < -3:  # 1E-400000: not an amount of a statement, and not worth rounding
            if text.is_zero():
                return 0
            raise StatementError(f"« {_shown(text)} » a plus de deux décimales.")
        rounded = text.quantize(_CENT)
        if rounded != text:
            raise StatementError(f"« {_shown(text)} » a plus de deux décimales.")
        return int(rounded.scaleb(2))
    if len(text or "") > _SHOWN:
        raise StatementError(f"« {_shown(text)} » n'est pas un montant.")
    raw = re.sub(r"[\s\u00a0\u202f€]", "", text or "")
    if raw.count(",") == 1 and raw.count(".") >= 1 and raw.rfind(",") > raw.rfind("."):
        raw = raw.replace(".", "")
    raw = raw.replace(",", ".")
    if raw.count(".") > 1:
        head, _, tail = raw.rpartition(".")
        raw = head.replace(".", "") + "." + tail
    match = _PLAIN_AMOUNT.fullmatch(raw)
    if match is None or not (match.group(2) or match.group(3)):
        raise StatementError(f"« {_shown(text)} » n'est pas un montant.")
    sign, whole, decimals = match.groups()
    return _bounded(sign, whole, decimals or "", text)


def parse_day(text: str) -> date:
    """A date as banks write it (31/08/2025, 31/08/25, 2025-08-31, 31-08-2025, 31.08.2025)."""
    text = (text or "").strip()
    if len(text) <= 12:
        for fmt in ("%d/%m/%Y", "%d/%m/%y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
            try:
                return datetime.strptime(text, fmt).date()
            except ValueError:
                continue
    raise StatementError(f"« {_shown(text)} » n'est pas une date (jj/mm/aaaa attendu).")


def _iso_day(text: str, what: str = "date") -> date:
    """An ISO date (2025-08-31, or the start of a date-time), as CAMT.053 gives them."""
    try:
        return date.fromisoformat((text or "")[:10])
    except ValueError:
        shown = _shown(text) if text else "vide"
        raise StatementError(f"Une {what} du relevé n'est pas valable (« {shown} »).") from None


_CHEQUE_IN_LABEL = re.compile(r"^\s*(?:CHEQUE|CHQ)\.?\s*(?:N[°O]\s*)?0*(\d+)")


def cheque_from_label(label: str) -> str:
    """The cheque number of a line whose label starts with CHEQUE/CHQ (leading zeros removed)."""
    match = _CHEQUE_IN_LABEL.match(fold(label))
    return match.group(1) if match else ""


def normalise_number(number: str) -> str:
    digits = re.sub(r"\D", "", number or "")
    return digits.lstrip("0") or ("0" if digits else "")


# -- OFX -----------------------------------------------------------------------------------------


def parse_ofx(content: bytes) -> ParsedStatement:
    """An OFX 1.x (SGML) or 2.x (XML) bank statement download.

    ofxtools reads the file into a tree (header, charset, SGML without closing tags); the statement
    is then read from that tree directly: ofxtools' conversion into typed objects cost 4 s for a
    20,000-line file, and its checks are the ones done here (dates, amounts, French messages)."""
    from ofxtools.Parser import OFXTree

    tree = OFXTree()
    try:
        tree.parse(io.BytesIO(content))
        root = tree.getroot()
    except Exception:  # ofxtools raises many kinds of errors on malformed files
        raise StatementError("Fichier OFX illisible : ce n'est pas un relevé OFX complet.") from None
    statement = root.find(".//STMTRS") if root is not None else None
    if statement is None:
        statement = root.find(".//CCSTMTRS") if root is not None else None
    if statement is None:
        raise StatementError("Le fichier OFX ne contient aucun relevé de compte.")
    return _ofx_statement(statement)


def _ofx_text(node, path: str) -> str:
    found = node.find(path)
    return (found.text or "").strip() if found is not None else ""


def _ofx_day(text: str, what: str = "date") -> date:
    """An OFX date-time (20250902, 20250902120000.000[+1:CET]): its day."""
    try:
        if len(text) < 8 or not text[:8].isdigit():
            raise ValueError
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        shown = _shown(text) if text else "vide"
        raise StatementError(f"Une {what} du relevé OFX n'est pas valable (« {shown} »).") from None


def _ofx_statement(statement) -> ParsedStatement:
    transactions = statement.find("BANKTRANLIST")
    records = transactions.findall("STMTTRN") if transactions is not None else []
    if len(records) > MAX_LINES:
        raise StatementError(TOO_MANY_LINES)
    lines = []
    for tx in records:
        kind, name, memo = _ofx_text(tx, "TRNTYPE"), _ofx_text(tx, "NAME"), _ofx_text(tx, "MEMO")
        if not name:
            name = _ofx_text(tx, "PAYEE/NAME")
        # Banks often repeat the name at the start of the memo: keep the longer one then.
        label = (
            memo
            if name and memo.startswith(name)
            else name
            if memo and name.startswith(memo)
            else " ".join(part for part in (name, memo) if part)
        )
        checknum, fitid = _ofx_text(tx, "CHECKNUM"), _ofx_text(tx, "FITID")
        cheque = ""
        if kind == "CHECK" or cheque_from_label(name):
            cheque = normalise_number(checknum) or cheque_from_label(name)
        posted, amount, user = _ofx_text(tx, "DTPOSTED"), _ofx_text(tx, "TRNAMT"), _ofx_text(tx, "DTUSER")
        day = _ofx_day(posted)
        lines.append(
            BankLine(
                date=day,
                amount_cents=to_cents(amount),
                label=label,
                value_date=_ofx_day(user, "date d'opération") if user else None,
                cheque_number=cheque[:20],
                bank_id=fitid,
                raw=f"{kind};{day:%Y-%m-%d};{amount};{fitid};{checknum};{name};{memo}",
            )
        )
    account = statement.find("BANKACCTFROM")
    if account is None:
        account = statement.find("CCACCTFROM")
    parsed = ParsedStatement("ofx", lines)
    if account is not None:
        parsed.account = _ofx_text(account, "ACCTID")
        parsed.details["bank_code"] = _ofx_text(account, "BANKID")
        parsed.details["branch_code"] = _ofx_text(account, "BRANCHID")
    balance = statement.find("LEDGERBAL")
    if balance is not None:
        parsed.closing_balance_cents = to_cents(_ofx_text(balance, "BALAMT"))
        parsed.closing_balance_date = _ofx_day(_ofx_text(balance, "DTASOF"), "date de solde")
    if transactions is not None and _ofx_text(transactions, "DTSTART") and _ofx_text(transactions, "DTEND"):
        parsed.start_date = _ofx_day(_ofx_text(transactions, "DTSTART"), "date de début")
        parsed.end_date = _ofx_day(_ofx_text(transactions, "DTEND"), "date de fin")
    return parsed


# -- CAMT.053 ------------------------------------------------------------------------------------


def parse_camt(content: bytes) -> ParsedStatement:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(content, parser)
    except (etree.LxmlError, ValueError):
        raise StatementError("Fichier XML illisible : ce n'est pas un relevé CAMT.053 complet.") from None

    def find(node, path):
        found = node.xpath(path)
        return found[0] if found else None

    def text(node, path):
        found = find(node, path)
        return (found.text or "").strip() if found is not None else ""

    def local(path: str) -> str:
        return "/".join(f"*[local-name()='{step}']" if step not in (".", "..") else step for step in path.split("/"))

    statement = find(root, ".//" + local("Stmt"))
    if statement is None:
        raise StatementError("Ce fichier XML n'est pas un relevé CAMT.053.")
    lines = []
    for entry in statement.xpath(local("Ntry")):
        if text(entry, local("Sts")) not in ("", "BOOK"):
            continue  # pending lines are not on the statement yet
        amount = abs(to_cents(text(entry, local("Amt"))))
        if text(entry, local("CdtDbtInd")) == "DBIT":
            amount = -amount
        day = text(entry, local("BookgDt/Dt")) or text(entry, local("BookgDt/DtTm"))[:10]
        value = text(entry, local("ValDt/Dt"))
        details = entry.xpath(local("NtryDtls/TxDtls"))
        cheque = ""
        if amount < 0 and len(details) == 1:
            cheque = normalise_number(text(details[0], local("Refs/ChqNb")))
        references = [text(detail, local("Refs/EndToEndId")) for detail in details]
        references += [text(detail, local("Refs/MndtId")) for detail in details]
        informations = [text(entry, local("AddtlNtryInf"))]
        informations += [text(detail, local("RmtInf/Ustrd")) for detail in details]
        label = " ".join(part for part in informations if part)
        lines.append(
            BankLine(
                date=_iso_day(day),
                amount_cents=amount,
                label=label,
                value_date=_iso_day(value, "date de valeur") if value else None,
                cheque_number=cheque,
                reference=" ".join(ref for ref in references if ref and ref != "NOTPROVIDED"),
                bank_id=text(entry, local("AcctSvcrRef")),
                raw=etree.tostring(entry, encoding="unicode")[:4000],
            )
        )
    parsed = ParsedStatement("camt.053", lines, account=text(statement, local("Acct/Id/IBAN")))
    for balance in statement.xpath(local("Bal")):
        if text(balance, local("Tp/CdOrPrtry/Cd")) == "CLBD":
            cents = abs(to_cents(text(balance, local("Amt"))))
            parsed.closing_balance_cents = -cents if text(balance, local("CdtDbtInd")) == "DBIT" else cents
            closing_on = text(balance, local("Dt/Dt")) or text(balance, local("Dt/DtTm"))
            parsed.closing_balance_date = _iso_day(closing_on, "date de solde")
    start, end = text(statement, local("FrToDt/FrDtTm")), text(statement, local("FrToDt/ToDtTm"))
    parsed.start_date = _iso_day(start, "date de début") if start else None
    parsed.end_date = _iso_day(end, "date de fin") if end else None
    return parsed


# -- QIF -----------------------------------------------------------------------------------------


def parse_qif(text: str) -> ParsedStatement:
    lines: list[BankLine] = []
    record: dict[str, str] = {}
    raw: list[str] = []
    for row in text.splitlines():
        if not row.strip() or row.startswith("!"):
            continue
        if row.startswith("^"):
            if record:
                if len(lines) >= MAX_LINES:
                    raise StatementError(TOO_MANY_LINES)
                label = " ".join(part for part in (record.get("P", ""), record.get("M", "")) if part)
                number = record.get("N", "")
                lines.append(
                    BankLine(
                        date=parse_day(record.get("D", "")),
                        amount_cents=to_cents(record.get("T", "")),
                        label=label,
                        cheque_number=normalise_number(number)
                        if number.strip().isdigit()
                        else cheque_from_label(label),
                        raw="|".join(raw),
                    )
                )
            record, raw = {}, []
            continue
        record[row[0]] = row[1:].strip()
        raw.append(row)
    if not lines:
        raise StatementError("Le fichier QIF ne contient aucune opération.")
    return ParsedStatement("qif", lines)


# -- CSV -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvMapping:
    """Which columns hold what (0-based indexes); either `amount` or `debit`/`credit`."""

    date: int
    label: tuple[int, ...]
    amount: int | None = None
    debit: int | None = None
    credit: int | None = None
    value_date: int | None = None
    reference: int | None = None
    name: str = "manuel"


@dataclass(frozen=True)
class CsvPreset:
    name: str
    required: tuple[str, ...]  # folded header names that identify the layout
    date: str
    label: tuple[str, ...]
    amount: str | None = None
    debit: str | None = None
    credit: str | None = None
    value_date: str | None = None
    reference: str | None = None


PRESETS = (
    CsvPreset(
        "Caisse d'Épargne / Banque Populaire",
        ("DATE DE COMPTABILISATION", "LIBELLE OPERATION", "DEBIT", "CREDIT"),
        date="DATE DE COMPTABILISATION",
        label=("LIBELLE OPERATION", "INFORMATIONS COMPLEMENTAIRES"),
        debit="DEBIT",
        credit="CREDIT",
        value_date="DATE DE VALEUR",
        reference="REFERENCE",
    ),
    CsvPreset(
        "Crédit Mutuel / CIC",
        ("DATE", "DATE DE VALEUR", "DEBIT", "CREDIT", "LIBELLE"),
        date="DATE",
        label=("LIBELLE",),
        debit="DEBIT",
        credit="CREDIT",
        value_date="DATE DE VALEUR",
    ),
    CsvPreset(
        "Crédit Mutuel / CIC",
        ("DATE", "DATE DE VALEUR", "MONTANT", "LIBELLE"),
        date="DATE",
        label=("LIBELLE",),
        amount="MONTANT",
        value_date="DATE DE VALEUR",
    ),
    CsvPreset(
        "CIC",
        ("DATE D'OPERATION", "DATE DE VALEUR", "MONTANT", "LIBELLE"),
        date="DATE D'OPERATION",
        label=("LIBELLE",),
        amount="MONTANT",
        value_date="DATE DE VALEUR",
    ),
    CsvPreset(
        "Crédit Agricole",
        ("DATE", "LIBELLE", "DEBIT EUROS", "CREDIT EUROS"),
        date="DATE",
        label=("LIBELLE",),
        debit="DEBIT EUROS",
        credit="CREDIT EUROS",
        value_date="DATE VALEUR",
    ),
    CsvPreset(
        "La Banque Postale",
        ("DATE", "LIBELLE", "MONTANT(EUROS)"),
        date="DATE",
        label=("LIBELLE",),
        amount="MONTANT(EUROS)",
    ),
    CsvPreset(
        "Société Générale",
        ("DATE DE L'OPERATION", "LIBELLE", "MONTANT DE L'OPERATION"),
        date="DATE DE L'OPERATION",
        label=("LIBELLE", "DETAIL DE L'ECRITURE"),
        amount="MONTANT DE L'OPERATION",
    ),
)


def _csv_rows(text: str) -> list[list[str]]:
    """The rows of a CSV file, its delimiter guessed from its first lines (StatementError when the
    file has more lines than a statement may have, or a cell larger than csv's limit of 128 KB)."""
    if text.count("\n") > MAX_LINES + 100:  # header and footer lines of the bank
        raise StatementError(TOO_MANY_LINES)
    sample = "\n".join(text[:100_000].splitlines()[:30])
    delimiter = max((";", ",", "\t"), key=lambda d: sample.count(d))
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error:
        raise StatementError("Fichier CSV illisible : une cellule est trop longue ou mal fermée.") from None


def _preset_mapping(rows: list[list[str]]) -> tuple[int, CsvMapping] | None:
    """Find the header row (in the first 25 lines) of a known layout."""
    for index, row in enumerate(rows[:25]):
        header = [fold(cell) for cell in row]
        for preset in PRESETS:
            if all(name in header for name in preset.required):
                columns = {name: i for i, name in reversed(list(enumerate(header)))}  # first occurrence wins
                labels = tuple(columns[name] for name in preset.label if name in columns)
                return index, CsvMapping(
                    date=columns[preset.date],
                    label=labels,
                    amount=columns.get(preset.amount),
                    debit=columns.get(preset.debit),
                    credit=columns.get(preset.credit),
                    value_date=columns.get(preset.value_date),
                    reference=columns.get(preset.reference),
                    name=preset.name,
                )
    return None


def _widest_row(rows: list[list[str]]) -> int:
    """The row taken for the header of an unknown layout: the first of the widest (3 cells at least)
    in the first 25 lines, so that a preamble (account, period) is skipped."""
    width = max((len(row) for row in rows[:25]), default=0)
    return next((i for i, row in enumerate(rows[:25]) if len(row) == width and width >= 3), 0)


def mapping_header_row(content: bytes) -> int:
    """The row whose cells `NeedsMapping` showed as column names: the header for the user's mapping."""
    return _widest_row(_csv_rows(decode(content)))


def looks_like_a_statement(columns: list[str], sample: list[list[str]]) -> bool:
    """An unknown CSV deserves the column question only with the three columns a statement needs
    (date, label, amount) and a date in its first lines: a letter with commas is not a statement."""
    if len(columns) < 3:
        return False
    for row in sample:
        for cell in row:
            try:
                parse_day(cell)
            except StatementError:
                continue
            return True
    return False


_IBAN_IN_TEXT = re.compile(r"\b([A-Z]{2}\d{2}(?: ?[0-9A-Z]){11,30})\b")
_ACCOUNT_IN_TEXT = re.compile(r"\bCOMPTE\b[^0-9A-Z]{0,30}(?:N[O°]?\s*)?[^0-9A-Z]{0,5}([0-9A-Z]{11,23})\b")


def _csv_account(preamble: list[list[str]]) -> str:
    """The account named in the lines above a bank CSV's header (« Numéro de compte : … », an IBAN), if any."""
    for row in preamble:
        text = fold(" ".join(row)[:500])
        for pattern in (_IBAN_IN_TEXT, _ACCOUNT_IN_TEXT):
            found = pattern.search(text)
            if found and any(ch.isdigit() for ch in found.group(1)):
                return found.group(1).replace(" ", "")
    return ""


def parse_csv(text: str, mapping: CsvMapping | None = None, header_row: int | None = None) -> ParsedStatement:
    """Parse a bank CSV with a detected preset, or with the user's `mapping` (header on `header_row`)."""
    rows = _csv_rows(text)
    if mapping is None:
        found = _preset_mapping(rows)
        if found is None:
            first = _widest_row(rows)
            raise NeedsMapping(rows[first] if rows else [], rows[first + 1 : first + 6])
        header_row, mapping = found
    header_row = header_row or 0
    lines: list[BankLine] = []
    errors = []
    for number, row in enumerate(rows[header_row + 1 :], start=header_row + 2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(index, row=row):
            return row[index].strip() if index is not None and index < len(row) else ""

        try:
            if not cell(mapping.date):
                continue  # footer or balance lines
            day = parse_day(cell(mapping.date))
            value_day = parse_day(cell(mapping.value_date)) if cell(mapping.value_date) else None
            if mapping.amount is not None:
                amount = to_cents(cell(mapping.amount))
            else:
                debit, credit = cell(mapping.debit), cell(mapping.credit)
                amount = (-abs(to_cents(debit)) if debit else 0) + (abs(to_cents(credit)) if credit else 0)
        except StatementError as exc:
            errors.append(f"ligne {number} : {exc}")
            continue
        label = " ".join(cell(i) for i in mapping.label if cell(i))
        lines.append(
            BankLine(
                date=day,
                amount_cents=amount,
                label=label,
                value_date=value_day,
                cheque_number=cheque_from_label(label),
                reference=cell(mapping.reference),
                raw=";".join(row),
            )
        )
    if errors:
        raise StatementError("Lignes illisibles : " + " ; ".join(errors[:5]))
    if not lines:
        raise StatementError("Aucune opération trouvée dans ce fichier.")
    lines.sort(key=lambda line: line.date)  # some banks list the newest first
    return ParsedStatement(f"csv ({mapping.name})", lines, account=_csv_account(rows[:header_row]))


# -- entry point ---------------------------------------------------------------------------------


def parse_statement(
    content: bytes, *, mapping: CsvMapping | None = None, header_row: int | None = None
) -> ParsedStatement:
    """Detect the format and parse; raise StatementError (or NeedsMapping for an unknown CSV)."""
    if len(content) > MAX_BYTES:
        raise StatementError(TOO_BIG)
    if not content.strip():
        raise StatementError("Le fichier est vide.")
    head = content[:2048].lstrip(b"\xef\xbb\xbf \r\n\t")
    if head.startswith(b"%PDF") or b"\x00" in content[:4096]:
        raise StatementError(
            "Ce fichier n'est pas un relevé au format texte (OFX, CAMT.053, CSV ou QIF). "
            "Un relevé PDF ne peut pas être importé : téléchargez le relevé « OFX » ou « CSV » "
            "depuis votre banque en ligne."
        )
    upper = head.upper()
    if upper.startswith(b"OFXHEADER") or b"<OFX>" in upper:
        if content.upper().count(b"<STMTTRN>") > MAX_LINES:
            raise StatementError(TOO_MANY_LINES)
        parsed = parse_ofx(content)
    elif upper.startswith(b"<?XML") or upper.startswith(b"<DOCUMENT"):
        if content.count(b"Ntry>") > 2 * MAX_LINES:
            raise StatementError(TOO_MANY_LINES)
        parsed = parse_camt(content)
    elif upper.startswith(b"!TYPE:"):
        parsed = parse_qif(decode(content))
    else:
        text = decode(content)
        first_line = text.split("\n", 1)[0]
        if not re.search(r"[;,\t]", first_line) and mapping is None and _preset_mapping(_csv_rows(text)) is None:
            raise StatementError("Ce fichier n'est pas un relevé bancaire reconnu (OFX, CAMT.053, CSV ou QIF).")
        parsed = parse_csv(text, mapping, header_row)
    if len(parsed.lines) > MAX_LINES:
        raise StatementError(TOO_MANY_LINES)
    if parsed.lines and parsed.start_date is None:
        parsed.start_date = min(line.date for line in parsed.lines)
        parsed.end_date = max(line.date for line in parsed.lines)
    return parsed
