"""Helpers shared by the test modules: page text, PDF text, browser log-in.

Fixtures live in `tests/conftest.py`; these are plain functions a test imports.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

from pypdf import PdfReader

PASSWORD = "un mot de passe de test"
# Second factor of the staff accounts made by the `make_staff` fixture (an authenticator app's secret).
STAFF_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
_SPACES = re.compile(r"[\s\u00a0\u202f]+")


def page_html(response) -> str:
    """The response body with HTML entities decoded (what a user reads, markup kept)."""
    return html.unescape(response.get_data(as_text=True))


def plain(text: str) -> str:
    """Every run of spaces (no-break and narrow no-break included) as one plain space."""
    return _SPACES.sub(" ", text)


def pdf_text(source: bytes | Path | str) -> str:
    """The text of a PDF (bytes or a file), spaces folded."""
    reader = PdfReader(io.BytesIO(source) if isinstance(source, bytes) else source)
    return plain(" ".join(page.extract_text() for page in reader.pages))


def pdf_download_text(response) -> str:
    """The text of a PDF served as an attachment (status, type and disposition checked)."""
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return pdf_text(response.data)


def browser_log_in(page, login: str, password: str = PASSWORD, then: str = "") -> None:
    """Log in through the real form in Chromium and wait for the landing page (`then`, or home)."""
    page.goto(f"/connexion?next={then}" if then else "/connexion")
    page.get_by_label("Identifiant").fill(login)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_load_state()
    if "/connexion/code" in page.url:  # staff: the second factor (accounts from `make_staff`)
        from app import auth, clock

        page.get_by_label("Code de l'application d'authentification").fill(
            auth.totp_code(STAFF_TOTP_SECRET, clock.now())
        )
        page.get_by_role("button", name="Valider le code").click()
    page.wait_for_url(re.compile(re.escape(then) + "$" if then else r"/$"))
