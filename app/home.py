"""The coop's home page: the checklist of the school year, one card per step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.identity import IDENTITY_FIELDS
from app.models import Coop, Mandate

# Fields without which the identity step is not complete (the phone and director are optional).
REQUIRED_IDENTITY = tuple(f for f in IDENTITY_FIELDS if f not in ("phone", "director_name"))


@dataclass(frozen=True)
class Step:
    """One card: `status` is done, todo, waiting or soon (not built yet)."""

    key: str
    title: str
    status: str
    summary: str
    action_label: str | None = None
    endpoint: str | None = None


def current_mandate(coop: Coop, today: date) -> Mandate | None:
    """The coop's current mandataire (the latest started among those running today)."""
    running = [m for m in coop.mandates if m.role == "mandataire" and m.is_current(today)]
    return max(running, key=lambda m: m.started_on, default=None)


def missing_identity_fields(coop: Coop) -> list[str]:
    return [field for field in REQUIRED_IDENTITY if not getattr(coop, field)]


def checklist(coop: Coop, today: date, year_label: str) -> list[Step]:
    """The year's steps with their status and next action, in the order a mandataire takes them."""
    missing = missing_identity_fields(coop)
    mandate = current_mandate(coop, today)
    soon = "Cette étape arrive bientôt sur le portail."
    return [
        Step("identity", "Identité de la coop",
             "todo" if missing else "done",
             f"{len(missing)} information(s) à compléter." if missing else "Informations complètes.",
             "Compléter" if missing else "Vérifier ou modifier", "coop.identity"),
        Step("membership", f"Adhésion {year_label}", "soon", soon),
        Step("ledger", "Cahier de comptabilité", "soon", soon),
        Step("closing", "Clôture de l'exercice précédent", "soon", soon),
        Step("reports", "Comptes rendus (CRA / CRF)", "soon", soon),
        Step("mandate", "Mandataire", "done" if mandate else "todo",
             f"Mandataire actuel : {mandate.full_name}." if mandate
             else "Aucun mandataire enregistré : contactez l'OCCE 85.", None, None),
    ]
