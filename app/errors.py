"""Errors raised by domain code, caught by views and CLI commands."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the operation. `field` names the form field (or box) at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationErrors(DomainError):
    """Several faults at once: `errors` maps a field (or a line number) to French messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        first = next(iter(errors.values()))[0] if errors else "Données invalides."
        super().__init__(first)
        self.errors = errors
