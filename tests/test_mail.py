"""Transactional outbox (SECURITY.md §3.4, T31): mail queued with the change it reports, delivered
over a real SMTP server on loopback (aiosmtpd), retried with backoff when SMTP is down, never lost
and never sent twice; `flask mail send`; the password reset mail; header injection refused.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from app.mail import SMTPTransport, deliver_pending, queue_email, queue_emails, retry
from app.models import OutboxEmail, utcnow

SENDER = "Coop 85 <ne-pas-repondre@occe85.invalid>"
SUBJECT = "Portail Coop 85 : votre relevé de compte est validé"
BODY = "Bonjour,\n\nL'OCCE 85 a validé le relevé de compte de votre coopérative (solde : 1 234,56 €).\n"


class RecordingHandler:
    """aiosmtpd handler that keeps every accepted message (parsed) with its envelope recipients."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def free_port() -> int:
    """A loopback port nobody listens on (SMTP "down" until a server is started there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def start_smtp() -> Iterator[Callable[[int | None], tuple[int, RecordingHandler]]]:
    """Start a real SMTP server on 127.0.0.1 (on `port`, or a free one); stopped after the test."""
    controllers: list[Controller] = []

    def start(port: int | None = None) -> tuple[int, RecordingHandler]:
        port = port or free_port()
        handler = RecordingHandler()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return port, handler

    yield start
    for controller in controllers:
        controller.stop()


def count_rows(session, **where) -> int:
    query = sa.select(sa.func.count()).select_from(OutboxEmail)
    for name, value in where.items():
        query = query.where(getattr(OutboxEmail, name) == value)
    return session.scalar(query)


def deliver(session, port: int, now: Callable[[], datetime] = utcnow, **kwargs):
    transport = SMTPTransport(host="127.0.0.1", port=port, timeout=5)
    return deliver_pending(session, transport, sender=SENDER, now=now, commit=session.commit, **kwargs)


class Clock:
    """A settable `now` for the delivery loop (moving time forward without sleeping)."""

    def __init__(self, start: datetime) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value

    def advance(self, delta: timedelta) -> None:
        self.value += delta


# --- queueing in the caller's transaction ---------------------------------------------------------


def test_mail_queued_in_a_rolled_back_transaction_is_never_sent(session):
    queue_email(session, to="coop1@example.org", subject=SUBJECT, text=BODY)
    session.flush()
    assert count_rows(session) == 1  # written in the transaction...
    session.rollback()
    assert count_rows(session) == 0  # ...and gone with it: a refused change announces nothing


def test_mail_queued_in_a_committed_transaction_is_pending(session):
    row = queue_email(session, to="coop1@example.org", subject=SUBJECT, text=BODY)
    session.commit()
    assert count_rows(session) == 1
    assert count_rows(session, status="pending") == 1
    assert row.attempts == 0
    assert re.fullmatch(r"<[0-9a-f]{32}@[\w.]+>", row.message_id)


@pytest.mark.parametrize(
    "subject",
    [
        "Relevé validé\nBcc: tout-le-monde@example.org",
        "Relevé validé\r\nBcc: tout-le-monde@example.org",
        "Relevé validé\u2028Bcc: tout-le-monde@example.org",
        "Relevé validé\x85Bcc: tout-le-monde@example.org",
        "Relevé validé\x00",
    ],
)
def test_header_injection_in_subject_is_refused(session, subject):
    with pytest.raises(ValueError, match="en-tête de courriel"):
        queue_email(session, to="coop1@example.org", subject=subject, text=BODY)
    session.commit()
    assert count_rows(session) == 0


def test_header_injection_in_recipient_is_refused(session):
    with pytest.raises(ValueError, match="en-tête de courriel"):
        queue_email(session, to="coop1@example.org\r\nBcc: autre@example.org", subject=SUBJECT, text=BODY)
    session.commit()
    assert count_rows(session) == 0


def test_mails_queued_together_are_delivered_like_single_ones(session, start_smtp):
    port, server = start_smtp()
    now = utcnow()
    mails = [(f"coop{n}@example.org", f"{SUBJECT} n° {n}", BODY) for n in (1, 2, 3)]
    assert queue_emails(session, mails, now=now) == 3
    session.commit()
    rows = session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id)).all()
    assert [(row.recipient, row.subject, row.status, row.attempts) for row in rows] == [
        (to, subject, "pending", 0) for to, subject, _ in mails
    ]
    assert len({row.message_id for row in rows}) == 3
    assert deliver(session, port).sent == 3
    assert sorted(message["To"] for message in server.messages) == [to for to, _, _ in mails]


def test_one_bad_header_among_mails_queued_together_queues_none(session):
    mails = [("coop1@example.org", SUBJECT, BODY), ("coop2@example.org", "Relevé\u2028Bcc: x@example.org", BODY)]
    with pytest.raises(ValueError, match="en-tête de courriel"):
        queue_emails(session, mails, now=datetime(2025, 9, 1))
    session.commit()
    assert count_rows(session) == 0


# --- delivery over SMTP ----------------------------------------------------------------------------


def test_pending_mail_is_delivered_once_with_its_message_id(session, start_smtp):
    port, server = start_smtp()
    row = queue_email(session, to="coop1@example.org", subject=SUBJECT, text=BODY)
    session.commit()
    message_id = row.message_id

    report = deliver(session, port)

    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    assert len(server.messages) == 1
    message = server.messages[0]
    assert server.recipients[0] == ["coop1@example.org"]
    assert message["To"] == "coop1@example.org"
    assert message["From"] == SENDER
    assert message["Subject"] == SUBJECT
    assert message["Message-ID"] == message_id
    assert message.get_content().replace("\r\n", "\n") == BODY
    session.expire_all()
    assert session.get(OutboxEmail, row.id).status == "sent"
    assert session.get(OutboxEmail, row.id).sent_at is not None

    again = deliver(session, port)
    assert again.sent == 0
    assert len(server.messages) == 1  # nothing sent twice


def test_mail_survives_an_smtp_outage_and_is_delivered_exactly_once(session, start_smtp):
    port = free_port()  # nothing listens here yet: SMTP is down
    row = queue_email(session, to="coop2@example.org", subject=SUBJECT, text=BODY)
    session.commit()
    row_id, message_id = row.id, row.message_id
    clock = Clock(utcnow())

    report = deliver(session, port, now=clock)

    assert (report.sent, report.retried, report.failed) == (0, 1, 0)
    session.expire_all()
    row = session.get(OutboxEmail, row_id)
    assert row.status == "pending"  # nothing lost
    assert row.attempts == 1
    assert "refused" in row.last_error.lower() or "ConnectionRefusedError" in row.last_error
    assert row.next_attempt_at > clock()  # backoff: not hammered on every run

    _, server = start_smtp(port)  # SMTP is back
    early = deliver(session, port, now=clock)
    assert early.sent == 0 and server.messages == []  # the backoff is respected

    clock.advance(timedelta(minutes=2))
    report = deliver(session, port, now=clock)
    assert report.sent == 1
    assert [m["Message-ID"] for m in server.messages] == [message_id]

    clock.advance(timedelta(hours=7))
    assert deliver(session, port, now=clock).sent == 0
    assert len(server.messages) == 1  # delivered exactly once
    session.expire_all()
    row = session.get(OutboxEmail, row_id)
    assert row.status == "sent"
    assert row.attempts == 2
    assert row.last_error == ""


def test_mail_is_failed_after_the_maximum_number_of_attempts(app, session, start_smtp):
    max_attempts = app.config["MAIL_MAX_ATTEMPTS"]
    port = free_port()
    row = queue_email(session, to="coop3@example.org", subject=SUBJECT, text=BODY)
    session.commit()
    row_id = row.id
    clock = Clock(utcnow())

    for attempt in range(1, max_attempts + 1):
        report = deliver(session, port, now=clock, max_attempts=max_attempts)
        session.expire_all()
        row = session.get(OutboxEmail, row_id)
        assert row.attempts == attempt
        if attempt < max_attempts:
            assert (report.retried, row.status) == (1, "pending")
        clock.advance(timedelta(hours=7))  # past the longest backoff

    assert report.failed == 1
    assert row.status == "failed"
    assert row.last_error

    # A failed mail stays failed (staff see it on the dashboard) even once SMTP is back...
    _, server = start_smtp(port)
    assert deliver(session, port, now=clock, max_attempts=max_attempts).sent == 0
    assert server.messages == []
    # ...until staff put it back in the queue: then it goes, once.
    retry(session.get(OutboxEmail, row_id), clock())
    session.commit()
    assert deliver(session, port, now=clock, max_attempts=max_attempts).sent == 1
    assert len(server.messages) == 1


class RelayKilled(BaseException):
    """Stands for the relay process dying (SIGKILL) right after the SMTP server accepted the mail."""


@dataclass
class SendThenDie:
    inner: SMTPTransport

    def send(self, message) -> None:
        self.inner.send(message)
        raise RelayKilled


def test_relay_killed_between_send_and_mark_resends_at_most_once_with_the_same_message_id(session, start_smtp):
    port, server = start_smtp()
    row = queue_email(session, to="coop6@example.org", subject=SUBJECT, text=BODY)
    session.commit()
    row_id, message_id = row.id, row.message_id
    clock = Clock(utcnow())

    with pytest.raises(RelayKilled):
        deliver_pending(
            session,
            SendThenDie(SMTPTransport("127.0.0.1", port, timeout=5)),
            sender=SENDER,
            now=clock,
            commit=session.commit,
        )
    session.rollback()  # the process is gone: whatever it had not committed is lost

    assert len(server.messages) == 1
    clock.advance(timedelta(minutes=2))  # the relay is restarted (next cron run)
    assert deliver(session, port, now=clock).sent == 1
    clock.advance(timedelta(hours=7))
    assert deliver(session, port, now=clock).sent == 0
    # One duplicate at most, recognisable by mail clients: the same Message-ID.
    assert [m["Message-ID"] for m in server.messages] == [message_id, message_id]
    session.expire_all()
    assert session.get(OutboxEmail, row_id).status == "sent"


def test_one_undeliverable_row_does_not_block_the_others(session, start_smtp):
    port, server = start_smtp()
    # A row written before header checks existed (or by hand): it cannot become a valid message.
    session.add(
        OutboxEmail(
            recipient="coop1@example.org",
            subject="Sujet\u2028cassé",
            body_text=BODY,
            message_id="<legacy-row@coop85.occe>",
        )
    )
    session.commit()
    good = queue_email(session, to="coop2@example.org", subject=SUBJECT, text=BODY)
    session.commit()
    good_id = good.id

    report = deliver(session, port)

    assert report.sent == 1
    assert [m["To"] for m in server.messages] == ["coop2@example.org"]
    session.expire_all()
    assert session.get(OutboxEmail, good_id).status == "sent"
    legacy = session.scalar(sa.select(OutboxEmail).where(OutboxEmail.message_id == "<legacy-row@coop85.occe>"))
    assert legacy.status == "pending" and legacy.attempts == 1 and legacy.last_error


# --- `flask mail send` -----------------------------------------------------------------------------


def queue_committed(app, **fields) -> str:
    from app.extensions import db

    with app.app_context():
        row = queue_email(db.session, **fields)
        db.session.commit()
        message_id = row.message_id
        db.session.remove()
    return message_id


def test_cli_mail_send_delivers_over_smtp(make_app, app, db_check, start_smtp):
    port, server = start_smtp()
    smtp_app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    message_id = queue_committed(smtp_app, to="coop4@example.org", subject=SUBJECT, text=BODY)

    result = smtp_app.test_cli_runner().invoke(args=["mail", "send"])

    assert result.exit_code == 0, result.output
    assert "1 envoyé(s), 0 à réessayer, 0 en échec définitif." in result.output
    assert [m["Message-ID"] for m in server.messages] == [message_id]
    assert server.messages[0]["From"] == smtp_app.config["MAIL_DEFAULT_SENDER"]
    assert db_check(lambda s: count_rows(s, status="sent")) == 1

    again = smtp_app.test_cli_runner().invoke(args=["mail", "send"])
    assert "0 envoyé(s)" in again.output
    assert len(server.messages) == 1


def test_cli_mail_send_reports_an_smtp_outage_and_keeps_the_mail(make_app, app, db_check):
    down_app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())
    queue_committed(down_app, to="coop4@example.org", subject=SUBJECT, text=BODY)

    result = down_app.test_cli_runner().invoke(args=["mail", "send"])

    assert result.exit_code == 1, result.output  # the scheduler sees that a mail did not go out
    assert "0 envoyé(s), 1 à réessayer, 0 en échec définitif." in result.output
    assert db_check(lambda s: count_rows(s, status="pending", attempts=1)) == 1


def test_cli_mail_send_without_smtp_server_writes_eml_files(app, db_check):
    assert not app.config.get("MAIL_SERVER")
    message_id = queue_committed(app, to="coop5@example.org", subject=SUBJECT, text=BODY)

    result = app.test_cli_runner().invoke(args=["mail", "send"])

    assert result.exit_code == 0, result.output
    assert "1 envoyé(s)" in result.output
    path = Path(app.config["MAIL_FILE_DIR"]) / f"{message_id.strip('<>').split('@')[0]}.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "coop5@example.org"
    assert message["From"] == app.config["MAIL_DEFAULT_SENDER"]  # no federation settings yet
    assert message["Subject"] == SUBJECT
    assert message["Message-ID"] == message_id
    assert "1 234,56 €" in message.get_content()
    assert db_check(lambda s: count_rows(s, status="sent")) == 1


def test_mail_goes_out_from_the_federation_sender_address(app):
    from app.extensions import db
    from app.models import Federation

    with app.app_context():
        db.session.add(Federation(name="OCCE 85 Vendée", sender_email="tresorerie@occe85.example"))
        db.session.commit()
        db.session.remove()
    message_id = queue_committed(app, to="coop6@example.org", subject=SUBJECT, text=BODY)

    result = app.test_cli_runner().invoke(args=["mail", "send"])

    assert result.exit_code == 0, result.output
    path = Path(app.config["MAIL_FILE_DIR"]) / f"{message_id.strip('<>').split('@')[0]}.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["From"].addresses[0].addr_spec == "tresorerie@occe85.example"
    assert message["From"].addresses[0].display_name == "OCCE 85 Vendée"


def test_smtp_timeout_comes_from_the_settings(make_app):
    from app.cli import transport_from_config

    transport = transport_from_config(make_app(MAIL_SERVER="127.0.0.1", MAIL_TIMEOUT=3).config)
    assert transport.timeout == 3.0
    assert transport_from_config(make_app(MAIL_SERVER="127.0.0.1").config).timeout == 10.0


# --- the password reset mail -----------------------------------------------------------------------


def test_password_reset_request_queues_a_mail_with_a_working_link(client, make_coop, db_check):
    coop = make_coop(7, email="ce.0850007w@ac-nantes.fr")

    response = client.post("/mot-de-passe/oubli", data={"identifier": coop.login})

    assert response.status_code == 302
    assert response.headers["Location"] == "/connexion"
    page = html.unescape(client.get("/connexion").get_data(as_text=True))
    assert "Si cet identifiant existe, un e-mail contenant un lien vient d'être envoyé" in page
    rows = db_check(
        lambda s: [(r.recipient, r.subject, r.body_text, r.status) for r in s.scalars(sa.select(OutboxEmail))]
    )
    assert len(rows) == 1
    recipient, subject, body, status = rows[0]
    assert (recipient, status) == ("ce.0850007w@ac-nantes.fr", "pending")
    assert subject == "Portail Coop 85 : choisir un nouveau mot de passe"
    assert coop.login in body
    match = re.search(r"https?://\S+(/mot-de-passe/reinitialiser/[\w-]+)", body)
    assert match, body

    form = client.get(match.group(1))
    assert form.status_code == 200
    assert "Nouveau mot de passe" in html.unescape(form.get_data(as_text=True))


def test_password_reset_for_an_unknown_login_answers_the_same_and_queues_nothing(client, make_coop, db_check):
    make_coop(7)
    known = client.post("/mot-de-passe/oubli", data={"identifier": "085-007"})
    known_page = client.get(known.headers["Location"]).get_data(as_text=True)
    unknown = client.post("/mot-de-passe/oubli", data={"identifier": "085-999"})
    unknown_page = client.get(unknown.headers["Location"]).get_data(as_text=True)

    assert (unknown.status_code, unknown.headers["Location"]) == (known.status_code, known.headers["Location"])
    flash = re.compile(r"Si cet identifiant existe[^<]*")
    assert flash.search(unknown_page).group(0) == flash.search(known_page).group(0)
    assert db_check(lambda s: count_rows(s)) == 1  # only the known login's mail
