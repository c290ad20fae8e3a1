"""Browser fixtures: the app served by a real WSGI server on loopback, driven by Debian's Chromium.

Playwright's own browser download is not available here: the suite uses /usr/bin/chromium
(installed by `make test` with apt when missing). Console errors (CSP violations included) fail
the test.

`axe_check(page)` runs axe-core (the npm package pinned in package.json, installed by `make test`
into node_modules/) on the page as it stands and fails on any serious or critical violation.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Collection, Iterator
from functools import cache
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# Impacts that fail a test: axe-core's two highest (moderate and minor ones are left to review).
AXE_FAILING_IMPACTS = ("serious", "critical")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_collection_modifyitems(items):
    # When the browser leaves a page while a static file is still streaming, Werkzeug's development
    # server drops the connection without closing that file: an unraisable ResourceWarning from the
    # server thread, about the test server only (production runs gunicorn). Only that one is ignored.
    marker = pytest.mark.filterwarnings(
        r"ignore:Exception ignored in. <_io\.(FileIO|BufferedReader) name='[^']*static:"
        "pytest.PytestUnraisableExceptionWarning"
    )
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(marker)


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium introuvable ({CHROMIUM}) : lancez `make test`, qui l'installe avec apt.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def _served(base_config, migrated) -> Iterator[tuple[Flask, str]]:
    """One CSRF-protected app served on loopback for the whole session (threaded Werkzeug server)."""
    # Static files cached by the browser: fewer requests for the dev server to abort on navigation.
    served = create_app({**base_config, "WTF_CSRF_ENABLED": True, "SEND_FILE_MAX_AGE_DEFAULT": 3600})
    server = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def live_server(app, _served) -> Iterator[str]:
    """The served app's base URL, on the test database already reset by `app`."""
    served, url = _served
    yield url
    with served.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def console_errors() -> list[str]:
    """The browser console errors of the test's page; a test that expects one (the 400 of a refused
    form) removes it with `expect_console_error`."""
    return []


@pytest.fixture
def expect_console_error(console_errors):
    """`expect_console_error(text)`: the test expected exactly this console error once; it is not a failure."""

    def expect(text: str) -> None:
        matching = [error for error in console_errors if text in error]
        assert matching, f"expected a console error containing {text!r}, got {console_errors}"
        console_errors.remove(matching[0])

    return expect


@pytest.fixture
def page(browser, live_server, console_errors):
    context = browser.new_context(base_url=live_server, locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = console_errors
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"browser console errors: {errors}"


@cache
def _axe_source() -> str:
    if not AXE_SCRIPT.is_file():
        pytest.fail(f"axe-core introuvable ({AXE_SCRIPT}) : lancez `make test`, qui l'installe avec npm ci.")
    return AXE_SCRIPT.read_text(encoding="utf-8")


def axe_violations(page, impacts: tuple[str, ...] = AXE_FAILING_IMPACTS) -> list[dict]:
    """axe-core's violations of `impacts` on the page as it stands (rules of every tag, best practices included).

    The script is evaluated through the DevTools protocol, which the page's nonce-only CSP does not
    govern; nothing is added to the page's own scripts.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    results = page.evaluate("async () => await window.axe.run(document, {resultTypes: ['violations']})")
    return [v for v in results["violations"] if v["impact"] in impacts]


def describe_violations(violations: list[dict]) -> str:
    """One readable line per violation: rule, impact, help and the first offending elements."""
    lines = []
    for violation in violations:
        targets = ", ".join(
            " ".join(node["target"]) if isinstance(node["target"], list) else str(node["target"])
            for node in violation["nodes"][:5]
        )
        more = f" (+{len(violation['nodes']) - 5})" if len(violation["nodes"]) > 5 else ""
        lines.append(f"{violation['id']} [{violation['impact']}] {violation['help']}: {targets}{more}")
    return "\n".join(lines)


# The markup does not depend on the database: the SQLite pass of `make test` scans every page with axe-core,
# the PostgreSQL pass (scripts/pytest_postgres.py) runs the same journeys without the scans, which cost about
# a second per page and would add minutes to CI for nothing new.
AXE_IN_THIS_PASS = not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


def axe_check(page, ignore: Collection[str] = ()) -> None:
    """Fail the test on any serious or critical axe-core violation of the current page.

    `ignore` names rules known to fail in a template another change is fixing; keep it rare and dated.
    Not run in the PostgreSQL pass (`AXE_IN_THIS_PASS`).
    """
    if not AXE_IN_THIS_PASS:
        return
    violations = [v for v in axe_violations(page) if v["id"] not in ignore]
    if violations:
        pytest.fail(f"axe-core on {page.url}:\n{describe_violations(violations)}", pytrace=False)


@pytest.fixture
def axe():
    """`axe(page)`: the axe-core check, as a fixture for journeys that prefer one to an import."""
    return axe_check


def _is_html(page) -> bool:
    return page.evaluate("() => document.contentType") == "text/html"


def _axe_after_load(page, ignore: Collection[str]) -> None:
    """`axe_check` once the page has loaded; a page still being replaced (a form sent back to the same
    address) is checked when its successor has loaded."""
    from playwright.sync_api import Error

    for attempt in (1, 2):
        page.wait_for_load_state()
        try:
            if _is_html(page):
                axe_check(page, ignore)
            return
        except Error as error:
            if attempt == 2 or "context was destroyed" not in str(error):
                raise


def axe_on_every_page(page, ignore: Collection[str] = ()) -> None:
    """From now on, every `page.goto(...)` and `page.wait_for_url(...)` of this page runs `axe_check` on
    the HTML page it lands on (downloads and PDFs are not checked). States reached without one of these
    (a form shown again with its errors, a panel opened by a script) still call `axe_check` themselves.
    The page asks for reduced motion: Bootstrap's colour transitions end at once, so that axe-core never
    measures a button's contrast halfway through its hover transition. axe-core needs scripts: a context
    without JavaScript is not checked (its pages are checked in the journeys with scripts).
    """
    page.emulate_media(reduced_motion="reduce")
    goto, wait_for_url = page.goto, page.wait_for_url

    def checked_goto(*args, **kwargs):
        response = goto(*args, **kwargs)
        _axe_after_load(page, ignore)
        return response

    def checked_wait_for_url(*args, **kwargs):
        wait_for_url(*args, **kwargs)
        _axe_after_load(page, ignore)

    page.goto = checked_goto
    page.wait_for_url = checked_wait_for_url
