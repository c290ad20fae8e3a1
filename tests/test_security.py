"""Security settings and rules of issue 14: secret key, second factor, least privilege, audit."""

from __future__ import annotations

import secrets

import pytest

from app.config import DEV_SECRET_KEY, ConfigError, build_config


@pytest.mark.parametrize(
    "key",
    [
        DEV_SECRET_KEY,
        "a",
        "0123456789abcdef0123456789abcde",  # 31 bytes
        "a" * 64,
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "passwordpasswordpasswordpassword",
    ],
)
def test_production_refuses_a_weak_secret_key(tmp_path, key):
    with pytest.raises(ConfigError) as refused:
        build_config(str(tmp_path), {}, environ={"SECRET_KEY": key})
    assert "secrets.token_hex(32)" in str(refused.value)


def test_production_accepts_a_generated_secret_key(tmp_path):
    for _ in range(50):
        build_config(str(tmp_path), {}, environ={"SECRET_KEY": secrets.token_hex(32)})
        build_config(str(tmp_path), {}, environ={"SECRET_KEY": secrets.token_urlsafe(32)})


def test_development_keeps_its_fixed_key(tmp_path):
    config = build_config(str(tmp_path), {}, environ={"COOP85_ENV": "development"})
    assert config["SECRET_KEY"] == DEV_SECRET_KEY
