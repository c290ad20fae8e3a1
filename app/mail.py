"""Transactional outbox: mail is queued in the caller's transaction and delivered later.

`queue_email` adds an `OutboxEmail` row (the caller commits it with the change it reports).
`deliver_pending` sends due rows through a transport, claiming each row in its own short
transaction before talking to SMTP, retrying with an exponential backoff and recording the error;
after `max_attempts` a row is marked failed. Each row has a stable Message-ID, so a duplicate
after a crash between send and mark is recognisable by mail clients.
"""

from __future__ import annotations

import re
import smtplib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Federation, OutboxEmail


def queue_email(
    session: Session, *, to: str, subject: str, text: str, html: str | None = None, domain: str = "coop85.occe"
) -> OutboxEmail:
    """Add a mail to the outbox (flushed with the caller's transaction). Refuses header injection.

    Raises ValueError when the recipient or subject holds a line break or another control character.
    """
    _check_header(to)
    _check_header(subject)
    row = OutboxEmail(
        recipient=to, subject=subject, body_text=text, body_html=html, message_id=f"<{uuid.uuid4().hex}@{domain}>"
    )
    session.add(row)
    return row


def queue_emails(
    session: Session, mails: Iterable[tuple[str, str, str]], *, now: datetime, domain: str = "coop85.occe"
) -> int:
    """Add many text mails (recipient, subject, text) to the outbox in one INSERT, in the caller's
    transaction (a run pre-notifies thousands of coops: no ORM object per mail). Returns the count.

    Raises ValueError, like `queue_email`, when a recipient or subject holds a line break or another
    control character (then nothing is queued).
    """
    rows = []
    for to, subject, text in mails:
        _check_header(to)
        _check_header(subject)
        rows.append(
            {
                "recipient": to,
                "subject": subject,
                "body_text": text,
                "body_html": None,
                "message_id": f"<{uuid.uuid4().hex}@{domain}>",
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
                "last_error": "",
            }
        )
    if rows:  # executemany: one pipeline of inserts on PostgreSQL
        session.execute(sa.insert(OutboxEmail.__table__), rows)
    return len(rows)


# Every character `unicodedata.category` puts in Cc (C0, DEL, C1), Zl or Zp.
_HEADER_BREAK = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _check_header(value: str) -> None:
    # Not only CR and LF: the email package refuses every line boundary (\x0b, \x85, \u2028...) when
    # the message is built, at delivery time; control characters have no place in a header either.
    if _HEADER_BREAK.search(value):
        raise ValueError(
            "Un en-tête de courriel ne peut pas contenir de retour à la ligne ni de caractère de contrôle."
        )


def sender_address(session: Session, fallback: str) -> str:
    """The From address: the federation's sender e-mail from its settings (with its name), else `fallback`
    (`MAIL_DEFAULT_SENDER`)."""
    federation = Federation.settings(session)
    email = (federation.sender_email or "").strip() if federation is not None else ""
    if not email or "@" not in parseaddr(email)[1]:
        return fallback
    return formataddr((federation.name or "", parseaddr(email)[1]))


def build_message(row: OutboxEmail, sender: str) -> EmailMessage:
    """The MIME message of an outbox row (text, plus HTML when present)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Message-ID"] = row.message_id
    message["Date"] = formatdate(localtime=False)
    message.set_content(row.body_text)
    if row.body_html:
        message.add_alternative(row.body_html, subtype="html")
    return message


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


@dataclass
class SMTPTransport:
    """Deliver over SMTP (STARTTLS or implicit TLS, optional login)."""

    host: str
    port: int = 25
    use_tls: bool = False
    use_ssl: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    def send(self, message: EmailMessage) -> None:
        factory = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
        with factory(self.host, self.port, timeout=self.timeout) as smtp:
            if self.use_tls and not self.use_ssl:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


@dataclass
class FileTransport:
    """Development: write each mail as an .eml file named after its Message-ID."""

    directory: Path

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").split("@")[0]
        (self.directory / f"{name}.eml").write_bytes(bytes(message))


def backoff(attempts: int) -> timedelta:
    """Wait before the next try: 1, 2, 4, ... minutes, at most 6 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def deliver_pending(
    session: Session,
    transport: Transport,
    *,
    sender: str,
    now: Callable[[], datetime],
    max_attempts: int = 8,
    commit: Callable[[], None] | None = None,
    limit: int = 500,
) -> DeliveryReport:
    """Send every due pending mail; a row that cannot be sent is retried later, never blocks the others.

    With `commit`, each attempt is first claimed and committed (attempts + 1, next try pushed back
    by the backoff), so no database transaction stays open while talking to the SMTP server (on
    SQLite that would lock every writer out), a concurrent sender skips the row, and a crash
    between send and mark re-sends it at most once, after the backoff, with the same Message-ID.
    """
    report = DeliveryReport()
    due = session.scalars(
        sa.select(OutboxEmail.id)
        .where(OutboxEmail.status == "pending", OutboxEmail.next_attempt_at <= now())
        .order_by(OutboxEmail.id)
        .limit(limit)
    ).all()
    for row_id in due:
        row = session.scalar(
            sa.select(OutboxEmail)
            .where(OutboxEmail.id == row_id, OutboxEmail.status == "pending", OutboxEmail.next_attempt_at <= now())
            .with_for_update(skip_locked=True)
        )
        if row is None:  # taken by a concurrent sender
            continue
        if row.attempts >= max_attempts:  # its last attempt was interrupted (crash): give up
            row.status = "failed"
            row.last_error = row.last_error or "Envoi interrompu."
            report.failed += 1
            if commit is not None:
                commit()
            continue
        row.attempts += 1
        row.next_attempt_at = now() + backoff(row.attempts)
        message: EmailMessage | None = None
        error: Exception | None = None
        try:
            message = build_message(row, sender)
        except Exception as exc:  # an unbuildable row must not stop the rest of the queue
            error = exc
        if commit is not None:
            commit()  # the claim: the SMTP conversation below runs outside any transaction
        if message is not None:
            try:
                transport.send(message)
            except Exception as exc:  # any transport fault: keep the mail, retry it later
                error = exc
        row = session.get(OutboxEmail, row_id)
        if error is None:
            row.status = "sent"
            row.sent_at = now()
            row.last_error = ""
            report.sent += 1
        else:
            row.last_error = f"{type(error).__name__}: {error}"[:1000]
            if row.attempts >= max_attempts:
                row.status = "failed"
                report.failed += 1
            else:
                row.next_attempt_at = now() + backoff(row.attempts)
                report.retried += 1
        if commit is not None:
            commit()
    return report


def retry(row: OutboxEmail, now: datetime) -> None:
    """Put a failed mail back in the queue (staff action)."""
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = now
