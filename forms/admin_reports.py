"""Forms of the back office's year-end pages: reviewing a yearly report, reopening a closed year."""

from __future__ import annotations

from wtforms import SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length

from forms.validators import SingleLineForm


class ReviewActionForm(SingleLineForm):
    """« Approuver »: a button that changes the report, only the CSRF token."""


class CommentForm(SingleLineForm):
    """« Renvoyer » (or « Rouvrir le cahier ») from the review page: the comment the coop reads."""

    reason = TextAreaField(
        "Commentaire pour la coopérative",
        validators=[DataRequired("Indiquez ce que la coopérative doit corriger."), Length(max=2000)],
        render_kw={"rows": 3},
    )


class ReopenForm(SingleLineForm):
    """« Rouvrir le cahier » from the list of closed cash-books: the reason goes to the audit log."""

    reason = TextAreaField(
        "Motif de la réouverture",
        validators=[
            DataRequired("Indiquez le motif de la réouverture : il est inscrit au journal d'audit."),
            Length(max=1000),
        ],
        render_kw={"rows": 3},
    )
    submit = SubmitField("Rouvrir le cahier")
