"""Password hashing (argon2id) and the password policy.

Policy (ASVS 5.0 §6.2): at least 12 characters, no composition rule, no truncation, up to 128
characters; refused when it is or contains the login, is in the shipped list of common passwords
(also after removing digits and symbols at its ends), repeats one character, is built on the
words everybody here would try (occe, coop, vendée, école...), or when the zxcvbn estimator
(keyboard walks, sequences, repeats, dictionaries, given those words and the account's own login,
school name and commune) scores it below 3 out of 4.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

MAX_LENGTH = 128
MIN_STRENGTH = 3  # zxcvbn score, 0-4: 3 resists an offline attack on a slow hash
_ZXCVBN_MAX = 72  # the estimator's own limit; a longer password is judged on its first 72 characters
_ESTIMATOR_WORDS = ("OCCE", "coop", "coopérative", "Vendée", "vendee", "école", "mandataire", "85", "085")
_COMMON_FILE = Path(__file__).parent / "data" / "common_passwords.txt"
_CONTEXT_WORDS = ("occe", "coop", "cooperative", "vendee", "ecole", "mandataire", "retkoop", "motdepasse")


@cache
def _hasher(params: tuple[tuple[str, int], ...]) -> PasswordHasher:
    return PasswordHasher(**dict(params))


def hasher(params: dict[str, int] | None = None) -> PasswordHasher:
    """An argon2id hasher; `params` lowers the cost in tests only (see ARGON2_PARAMS)."""
    return _hasher(tuple(sorted((params or {}).items())))


def hash_password(password: str, params: dict[str, int] | None = None) -> str:
    """Return the argon2id hash of `password`."""
    return hasher(params).hash(password)


def verify_password(stored_hash: str, password: str, params: dict[str, int] | None = None) -> bool:
    """True when `password` matches; never raises on a malformed hash."""
    try:
        return hasher(params).verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, params: dict[str, int] | None = None) -> bool:
    """True when the stored hash uses older parameters than the current ones."""
    try:
        return hasher(params).check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def _fold(text: str) -> str:
    """Lowercase, without accents."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, folded (one per line, `#` comments)."""
    lines = _COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(_fold(line.strip()) for line in lines if line.strip() and not line.startswith("#"))


def password_problems(password: str, *, login: str, min_length: int = 12, context: tuple[str, ...] = ()) -> list[str]:
    """French messages explaining why `password` is refused; an empty list means it is accepted."""
    if len(password) < min_length:
        return [f"Le mot de passe doit comporter au moins {min_length} caractères."]
    if len(password) > MAX_LENGTH:
        return [f"Le mot de passe ne peut pas dépasser {MAX_LENGTH} caractères."]
    folded = _fold(password)
    compact = re.sub(r"[\W_]+", "", folded)
    login_folded = re.sub(r"[\W_]+", "", _fold(login))
    if login_folded and login_folded in compact:
        return ["Le mot de passe ne doit pas contenir votre identifiant."]
    if len(set(folded)) <= 2:
        return ["Ce mot de passe est trop répétitif : choisissez une phrase de plusieurs mots."]
    core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", folded)
    common = common_passwords()
    if folded in common or compact in common or core in common:
        return ["Ce mot de passe fait partie des plus courants : choisissez-en un autre."]
    letters = re.sub(r"[^a-z]", "", compact)
    for word in _CONTEXT_WORDS + tuple(_fold(c) for c in context if len(c) >= 4):
        word = re.sub(r"[^a-z]", "", word)
        if word and letters and letters in {word, word * 2} | {word + w for w in _CONTEXT_WORDS}:
            return ["Ce mot de passe est trop facile à deviner (nom de l'école, de l'OCCE…)."]
    words = [login, *_ESTIMATOR_WORDS, *(c for c in context if c)]
    if zxcvbn(password[:_ZXCVBN_MAX], user_inputs=words)["score"] < MIN_STRENGTH:
        return [
            "Ce mot de passe est trop facile à deviner (suite de touches ou de chiffres, répétition, "
            "mot courant, nom de l'école ou de la commune…). Ajoutez quelques mots inattendus."
        ]
    return []
