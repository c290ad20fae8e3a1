"""Helpers shared by the views of both faces: the authentication policy read from the config."""

from __future__ import annotations

from flask import current_app

from app.auth import AuthPolicy


def auth_policy() -> AuthPolicy:
    config = current_app.config
    return AuthPolicy(
        max_failures=config["LOGIN_MAX_FAILURES"],
        window=config["LOGIN_FAILURE_WINDOW"],
        lock=config["LOGIN_LOCK_DURATION"],
        reset_validity=config["PASSWORD_RESET_VALIDITY"],
        min_length=config["PASSWORD_MIN_LENGTH"],
        hash_params=config["ARGON2_PARAMS"] or None,
    )
