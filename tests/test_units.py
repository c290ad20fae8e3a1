"""Pure functions: money, UAI, identity validators, OCCE codes, password policy, safe redirects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import ConfigError, build_config, database_url
from app.identity import check_bic, check_iban, check_phone, check_postal_code, check_uai, uai_check_letter
from app.models import occe_code
from app.money import format_amount, format_rate_ppm, parse_amount, parse_rate_ppm
from app.passwords import hash_password, password_problems, verify_password
from app.web.security import safe_next_url


@given(st.integers(min_value=-(10**11), max_value=10**11))
def test_amount_round_trip(cents):
    assert parse_amount(format_amount(cents)) == cents


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("1 234,56", 123456),
        ("1234.5", 123450),
        ("-12", -1200),
        ("12,30 €", 1230),
        ("0,05", 5),
        ("1\u202f000,00", 100000),
        ("1.234,56", 123456),
    ],
)
def test_parse_amount(text, cents):
    assert parse_amount(text) == cents


@pytest.mark.parametrize("text", ["", "abc", "1,234", "12,345", "1 23,00", "--1"])
def test_parse_amount_refuses(text):
    with pytest.raises(ValueError, match="montant"):
        parse_amount(text)


def test_rates():
    assert parse_rate_ppm("0,00688") == 6880
    assert format_rate_ppm(6880) == "0,00688"
    with pytest.raises(ValueError):
        parse_rate_ppm("0,0000001")


def test_occe_code():
    assert occe_code("6281") == "62810008"
    assert occe_code("61681") == "61681008"
    assert occe_code("68") == "68000008"


def test_uai():
    digits = "0850123"
    letter = uai_check_letter(digits)
    assert check_uai(f" {digits}{letter.lower()} ") == digits + letter
    wrong = "A" if letter != "A" else "B"
    with pytest.raises(ValueError, match="lettre de contrôle"):
        check_uai(digits + wrong)
    with pytest.raises(ValueError, match="7 chiffres"):
        check_uai("085012H")


def test_identity_validators():
    assert check_postal_code("85100") == "85100"
    with pytest.raises(ValueError, match="Vendée"):
        check_postal_code("44000")
    assert check_iban("fr76 1551 9000 0100 0200 0000 103") == "FR7615519000010002000000103"
    with pytest.raises(ValueError, match="IBAN"):
        check_iban("FR7615519000010002000000104")
    with pytest.raises(ValueError, match="IBAN"):
        check_iban("FR7600000000000000000000000")  # IBAN checksum right, RIB key wrong
    assert check_bic("cmcifr2a") == "CMCIFR2A"
    with pytest.raises(ValueError, match="BIC"):
        check_bic("CMCI")
    assert check_phone("+33 2 51 00 00 00") == "02 51 00 00 00"
    with pytest.raises(ValueError, match="10 chiffres"):
        check_phone("02 51")


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("short", False),
        ("a" * 11, False),
        ("aaaaaaaaaaaaaaa", False),  # repetitive
        ("azertyuiop123", False),  # common
        ("Motdepasse2025!", False),  # common base word
        ("Cooperative085!", False),  # context words
        ("occe85occe85", False),
        ("085-001-secret-x", False),  # contains the login
        ("la classe de mer à Noirmoutier", True),
        ("x" * 20 + "yz" * 60, True),  # 140 characters: too long
        ("une phrase assez longue " * 5 + "fin.", True),  # 129 > 128: refused
    ],
)
def test_password_policy(password, ok):
    problems = password_problems(password, login="085-001")
    if len(password) > 128:
        assert problems
    else:
        assert (problems == []) is ok, problems


def test_argon2id_hash_parameters_meet_asvs():
    stored = hash_password("la classe de mer à Noirmoutier")
    assert stored.startswith("$argon2id$")
    params = dict(part.split("=") for part in stored.split("$")[3].split(","))
    assert int(params["t"]) >= 2 and int(params["m"]) >= 19456
    long_password = "x" * 99 + "y"
    stored = hash_password(long_password)
    assert verify_password(stored, long_password)
    assert not verify_password(stored, "x" * 99 + "z")  # no truncation


@pytest.mark.parametrize(
    "target",
    [
        "//evil.tld",
        "https://evil.tld",
        "/\\evil.tld",
        "\\\\evil.tld",
        "https:evil.tld",
        " javascript:alert(1)",
        "http://127.0.0.1:5000/",
        "evil.tld",
        "/\tevil",
    ],
)
def test_safe_next_url_refuses_other_sites(target):
    assert safe_next_url(target, "/") == "/"


def test_safe_next_url_keeps_local_paths():
    assert safe_next_url("/coop/identite?x=1", "/") == "/coop/identite?x=1"


def test_production_requires_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build_config(str(tmp_path), {}, environ={})
    environ = {"SECRET_KEY": "5b1e8d27c4a9f063" * 4, "DATABASE_URL": "postgres://u@h/db"}
    config = build_config(str(tmp_path), {}, environ=environ)
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"
    assert database_url(None, "/x").endswith("/x/coop85.sqlite")


def test_create_app_refuses_production_without_secret(monkeypatch):
    from app import create_app

    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        create_app({"COOP85_ENV": "production"})
