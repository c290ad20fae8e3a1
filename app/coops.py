"""Creating coops with their login, and the bulk import of OCCE 85's coop list (CSV)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import audit
from app.auth import set_temporary_password
from app.errors import ValidationErrors
from app.identity import check_bic, check_email, check_iban, check_phone, check_postal_code, check_uai
from app.models import Coop, User, coop_login

IMPORT_COLUMNS = (
    "numero",
    "nom",
    "ecole",
    "uai",
    "adresse",
    "code_postal",
    "commune",
    "email",
    "telephone",
    "banque",
    "iban",
    "bic",
)
_COLUMN_TO_FIELD = {
    "nom": "name",
    "ecole": "school_name",
    "uai": "uai",
    "adresse": "address",
    "code_postal": "postal_code",
    "commune": "city",
    "email": "email",
    "telephone": "phone",
    "banque": "bank_name",
    "iban": "iban",
    "bic": "bic",
}


@dataclass
class Credential:
    """A login created with its temporary password (shown once, or written to the mail-merge CSV)."""

    login: str
    password: str
    name: str
    email: str


def create_coop_login(session: Session, coop: Coop, *, hash_params: dict | None = None) -> Credential:
    """Create the `085-NNN` login of `coop` with a temporary password that must be changed at first login."""
    user = User(login=coop_login(coop.number), role="coop", coop=coop)
    password = set_temporary_password(user, hash_params=hash_params)
    session.add(user)
    return Credential(login=user.login, password=password, name=coop.name, email=coop.email)


def reset_coop_password(
    session: Session, user: User, *, by: User, ip: str = "", hash_params: dict | None = None
) -> Credential:
    """Give `user` a new temporary password (forced change, every session ended)."""
    password = set_temporary_password(user, hash_params=hash_params)
    audit.record(
        session, "password.reset_by_staff", actor=by, coop_id=user.coop_id, entity="user", entity_id=user.id, ip=ip
    )
    return Credential(
        login=user.login,
        password=password,
        name=user.coop.name if user.coop else user.full_name,
        email=user.contact_email,
    )


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationErrors({"fichier": ["Le fichier n'est ni en UTF-8 ni en Windows-1252."]})


_VALIDATORS = {
    "uai": check_uai,
    "postal_code": check_postal_code,
    "email": check_email,
    "phone": check_phone,
    "iban": check_iban,
    "bic": check_bic,
}
_LABELS = {
    "name": "nom",
    "school_name": "ecole",
    "uai": "uai",
    "address": "adresse",
    "postal_code": "code_postal",
    "city": "commune",
    "email": "email",
    "phone": "telephone",
    "bank_name": "banque",
    "iban": "iban",
    "bic": "bic",
}

_MAX_LENGTHS = {name: Coop.__table__.c[name].type.length for name in _COLUMN_TO_FIELD.values()}


MAX_IMPORT_LINES = 10_000  # coop numbers go up to 9999


def parse_coops_csv(content: bytes) -> list[tuple[int, int, dict[str, Any]]]:
    """Parse and validate the coop list; return (line, number, fields). All errors at once, by line."""
    text = _decode(content)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    try:
        rows = list(reader)
    except csv.Error:  # e.g. a cell over the csv module's size limit: not a coop list
        raise ValidationErrors(
            {
                f"ligne {reader.line_num}": [
                    "Ligne illisible : est-ce bien le fichier CSV des coopératives (séparateur « ; ») ?"
                ]
            }
        ) from None
    if not rows:
        raise ValidationErrors({"fichier": ["Le fichier est vide."]})
    if len(rows) > MAX_IMPORT_LINES + 1:
        raise ValidationErrors(
            {"fichier": [f"Le fichier compte {len(rows) - 1} lignes : {MAX_IMPORT_LINES} coopératives au plus."]}
        )
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [column for column in IMPORT_COLUMNS if column not in header]
    if missing:
        raise ValidationErrors(
            {"ligne 1": ["Colonnes manquantes : " + ", ".join(missing) + ". Attendu : " + ";".join(IMPORT_COLUMNS)]}
        )
    index = {column: header.index(column) for column in IMPORT_COLUMNS}
    errors: dict[str, list[str]] = {}
    parsed: list[tuple[int, int, dict[str, Any]]] = []
    seen: dict[int, int] = {}
    for line_number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cell = {column: (row[i].strip() if i < len(row) else "") for column, i in index.items()}
        problems: list[str] = []
        # Plain digits only (int() would also take "1_0", "+5" or non-ASCII digits).
        digits = cell["numero"].removeprefix("085-")
        number = int(digits) if re.fullmatch(r"[0-9]{1,4}", digits) else 0
        if not 1 <= number <= 9999:
            problems.append(f"numero : « {cell['numero']} » n'est pas un numéro de coopérative (1 à 9999).")
        elif number in seen:
            problems.append(f"numero : {number:03d} figure déjà ligne {seen[number]}.")
        else:
            seen[number] = line_number
        fields: dict[str, Any] = {}
        for column, field_name in _COLUMN_TO_FIELD.items():
            value = cell[column]
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):  # a line break in a name breaks mail headers
                problems.append(f"{_LABELS[field_name]} : caractères de contrôle ou retour à la ligne interdits.")
                continue
            if field_name == "name" and not value:
                problems.append("nom : obligatoire.")
            if value and field_name in _VALIDATORS:
                try:
                    value = _VALIDATORS[field_name](value)
                except ValueError as exc:
                    problems.append(f"{_LABELS[field_name]} : {exc}")
            elif len(value) > _MAX_LENGTHS[field_name]:  # PostgreSQL would refuse it at commit
                problems.append(f"{_LABELS[field_name]} : {_MAX_LENGTHS[field_name]} caractères au plus.")
            fields[field_name] = value
        if problems:
            errors[f"ligne {line_number}"] = problems
        else:
            parsed.append((line_number, number, fields))
    if errors:
        raise ValidationErrors(errors)
    if not parsed:
        raise ValidationErrors({"fichier": ["Aucune coopérative dans le fichier."]})
    return parsed


@dataclass
class ImportResult:
    created: list[Credential] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def import_coops(
    session: Session, content: bytes, *, by: User | None, ip: str = "", hash_params: dict | None = None
) -> ImportResult:
    """Create or update coops from the CSV; all or nothing (raises ValidationErrors, adds nothing).

    Existing numbers are updated (their login and password untouched); new numbers get a coop,
    a login and a temporary password, returned for the mail-merge file.
    """
    parsed = parse_coops_csv(content)
    numbers = [number for _, number, _ in parsed]
    existing = {coop.number: coop for coop in session.scalars(sa.select(Coop).where(Coop.number.in_(numbers)))}
    result = ImportResult()
    for _, number, fields in parsed:
        coop = existing.get(number)
        if coop is None:
            coop = Coop(number=number, **fields)
            session.add(coop)
            session.flush()
            result.created.append(create_coop_login(session, coop, hash_params=hash_params))
            audit.record(
                session,
                "coop.created",
                actor=by,
                coop_id=coop.id,
                entity="coop",
                entity_id=coop.id,
                after=fields,
                ip=ip,
            )
        else:
            before = {name: getattr(coop, name) for name in fields}
            for name, value in fields.items():
                setattr(coop, name, value)
            old, new = audit.changed_fields(before, fields)
            if new:
                audit.record(
                    session,
                    "coop.updated",
                    actor=by,
                    coop_id=coop.id,
                    entity="coop",
                    entity_id=coop.id,
                    before=old,
                    after=new,
                    ip=ip,
                )
            result.updated.append(coop.login)
    session.flush()
    return result


def credentials_csv(credentials: list[Credential]) -> bytes:
    """The mail-merge file: `;`, UTF-8 with BOM, CRLF (opens in Excel with accents intact)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(["identifiant", "mot_de_passe_provisoire", "nom", "email"])
    for cred in credentials:
        writer.writerow(
            [_safe_cell(cred.login), _safe_cell(cred.password), _safe_cell(cred.name), _safe_cell(cred.email)]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _safe_cell(value: str) -> str:
    """Guard against formula injection in spreadsheets (CWE-1236)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
