"""Users and password reset tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

ROLES = ("coop", "staff", "admin")


class User(db.Model):
    """A login: a coop (role coop, one per coop) or an OCCE 85 staff member (staff or admin)."""

    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint("role IN ('coop', 'staff', 'admin')", name="role"),
        CheckConstraint("(role = 'coop') = (coop_id IS NOT NULL)", name="coop_iff_role_coop"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(10))
    coop_id: Mapped[int | None] = mapped_column(ForeignKey("coop.id", ondelete="CASCADE"), index=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Carried in the Flask-Login id; bumping it ends every session of the user (SECURITY.md §2.2).
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]
    # Staff second factor (TOTP, RFC 6238): base32 secret, when it was enrolled, the last 30-second
    # step accepted (a code is never accepted twice), and the argon2 hashes of the unused recovery codes.
    totp_secret: Mapped[str | None] = mapped_column(String(32))
    totp_enrolled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None]
    recovery_code_hashes: Mapped[list[Any] | None] = mapped_column(JSON)

    coop: Mapped[Coop | None] = relationship(back_populates="users")  # noqa: F821
    reset_tokens: Mapped[list[PasswordResetToken]] = relationship(back_populates="user", cascade="all, delete-orphan")

    # Flask-Login protocol
    @property
    def is_active(self) -> bool:
        return self.is_enabled and (self.coop is None or self.coop.is_active)

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_staff(self) -> bool:
        return self.role in ("staff", "admin")

    @property
    def has_second_factor(self) -> bool:
        return bool(self.totp_secret and self.totp_enrolled_at)

    @property
    def is_coop(self) -> bool:
        return self.role == "coop"

    @property
    def contact_email(self) -> str:
        """Where mail for this login goes: the coop's address for a coop, the user's own otherwise."""
        if self.coop is not None:
            return self.coop.email
        return self.email

    def __str__(self) -> str:
        return self.login


class PasswordResetToken(db.Model):
    """A mailed single-use reset link; only the token's SHA-256 is stored."""

    __tablename__ = "password_reset_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="reset_tokens")
