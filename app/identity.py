"""Identity of a coop: validation of its fields and the audited update.

Validators take the raw text and return the normalised value, or raise ValueError with a French
message; forms and the CSV import share them.
"""

from __future__ import annotations

import re
from typing import Any

from email_validator import EmailNotValidError, validate_email
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy.orm import Session

from app import audit
from app.errors import DomainError
from app.models import Coop, User

UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # 23 letters: no I, O, Q

# The fields a coop may change itself on the identity step (nothing else is ever assigned).
IDENTITY_FIELDS = (
    "name",
    "school_name",
    "uai",
    "address",
    "postal_code",
    "city",
    "email",
    "phone",
    "director_name",
    "bank_name",
    "iban",
    "bic",
)


def uai_check_letter(digits: str) -> str:
    """Check letter of a UAI: the seven digits modulo 23, over the alphabet without I, O, Q."""
    return UAI_LETTERS[int(digits) % 23]


def check_uai(value: str) -> str:
    """Normalise a UAI (0851234X): 7 digits and the right check letter, else ValueError."""
    uai = re.sub(r"\s", "", value or "").upper()
    if not re.fullmatch(r"\d{7}[A-Z]", uai):
        raise ValueError("Le numéro UAI comporte 7 chiffres suivis d'une lettre (ex. 0850123H).")
    if uai_check_letter(uai[:7]) != uai[7]:
        raise ValueError("Ce numéro UAI n'est pas valide : la lettre de contrôle ne correspond pas aux chiffres.")
    return uai


def check_postal_code(value: str) -> str:
    """A Vendée postal code: 85 followed by three digits."""
    code = (value or "").strip()
    if not re.fullmatch(r"85\d{3}", code):
        raise ValueError("Le code postal doit être celui d'une commune de Vendée (85000 à 85999).")
    return code


def check_iban(value: str) -> str:
    """Normalise an IBAN (compact, upper case) after checking its checksum, format and French RIB key."""
    try:
        return IBAN(value or "", validate_bban=True).compact
    except SchwiftyException:
        raise ValueError("Cet IBAN n'est pas valide : vérifiez les 27 caractères (FR76 …) sur votre RIB.") from None


def check_bic(value: str) -> str:
    """Normalise a BIC (8 or 11 characters)."""
    try:
        return str(BIC((value or "").strip()))
    except SchwiftyException:
        raise ValueError("Ce BIC n'est pas valide : il comporte 8 ou 11 caractères (ex. CMCIFR2A).") from None


def check_phone(value: str) -> str:
    """A French phone number, formatted by pairs (02 51 00 00 00)."""
    digits = re.sub(r"[\s.\-()]", "", value or "")
    if digits.startswith("+33"):
        digits = "0" + digits[3:]
    elif digits.startswith("0033"):
        digits = "0" + digits[4:]
    if not re.fullmatch(r"0[1-9]\d{8}", digits):
        raise ValueError("Le numéro de téléphone comporte 10 chiffres (ex. 02 51 00 00 00).")
    return " ".join(digits[i : i + 2] for i in range(0, 10, 2))


def check_email(value: str) -> str:
    """Normalise an e-mail address (syntax only; nothing is looked up on the network)."""
    try:
        return validate_email((value or "").strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("Cette adresse e-mail n'est pas valide (ex. ce.0850123h@ac-nantes.fr).") from None


def format_iban(iban: str) -> str:
    """IBAN by groups of four for display."""
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def snapshot(coop: Coop, fields: tuple[str, ...] = IDENTITY_FIELDS) -> dict[str, Any]:
    return {field: getattr(coop, field) for field in fields}


def update_identity(
    session: Session,
    coop: Coop,
    values: dict[str, Any],
    *,
    expected_version: int | None,
    by: User,
    ip: str = "",
) -> dict[str, Any]:
    """Apply the identity fields of `values` to `coop` and audit the change; return the changed fields.

    Only IDENTITY_FIELDS are assigned. Raises DomainError when the coop was saved by someone else
    since the form was shown (`expected_version` differs).
    """
    if expected_version is not None and expected_version != coop.version:
        raise DomainError(
            "Ces informations ont été modifiées entre-temps (par l'OCCE 85 ou un autre poste). "
            "La page a été rechargée avec les nouvelles valeurs : refaites vos modifications."
        )
    before = snapshot(coop)
    for field in IDENTITY_FIELDS:
        if field in values:
            setattr(coop, field, values[field])
    old, new = audit.changed_fields(before, snapshot(coop))
    if new:
        audit.record(
            session,
            "coop.identity_updated",
            actor=by,
            coop_id=coop.id,
            entity="coop",
            entity_id=coop.id,
            before=old,
            after=new,
            ip=ip,
        )
    return new
