"""Year end on the coop face: the closing wizard (`closing`), then the reports (`reports`: CRA, CRF,
quitus, documents, sending). One blueprint, "yearend", for both.

Every step is one page; each form posts, the domain call runs through the unit of work
(`app.web.uow`), and the view redirects (PRG, one flash) or re-renders the form with its errors.
GET requests never write: the yearly report row is created by the first POST. The clock is
`app.clock`, read here and passed to the domain.
"""

from __future__ import annotations

from app.views.yearend import closing, reports  # noqa: F401 - importing them registers the routes on `bp`
from app.views.yearend.blueprint import bp

__all__ = ["bp"]
