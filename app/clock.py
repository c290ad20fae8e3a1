"""The one clock of the portal.

Everything that needs the time asks `now()` (naive UTC, as every datetime column stores) or
`today()` (the date in Paris, where the school year turns on 1 September). Domain functions do not
call it: the web layer and the CLI read it once per request or command and pass it in. Tests pin
it with the `clock` fixture (`tests/conftest.py`), which calls `freeze()`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")

_frozen: datetime | None = None


def now() -> datetime:
    """The current moment, naive UTC (or the frozen moment in tests)."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC).replace(tzinfo=None)


def today() -> date:
    """Today's date in Paris (the school year and every deadline are French dates)."""
    return now().replace(tzinfo=UTC).astimezone(PARIS).date()


def timestamp() -> int:
    """Seconds since the epoch of `now()` (session idle and lifetime checks)."""
    return int(now().replace(tzinfo=UTC).timestamp())


def freeze(moment: datetime | None) -> None:
    """Pin the clock to `moment` (naive UTC); `None` lets it run again. For tests and benchmarks."""
    global _frozen
    _frozen = moment
